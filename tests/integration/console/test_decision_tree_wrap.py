"""The decision tree wraps every label under itself and never writes past its pane, however deep the walk."""

from __future__ import annotations

import asyncio

import pytest
from textual.app import App, ComposeResult

from console.tui.widgets.decision_tree import DecisionTreeWidget, TreeEntry, _TreeLines

QUESTION = "Is there a fleet snapshot to look at, and does the node replicate with other nodes (a replication group)?"


class TreeApp(App[None]):
    def compose(self) -> ComposeResult:
        yield DecisionTreeWidget()

    def on_mount(self) -> None:
        # A walk fifteen questions deep, as accidental-deletion's path through the real tree goes.
        self.query_one(_TreeLines).entries = tuple(
            TreeEntry(depth, f"yes: ✔ {QUESTION} = no", "current" if depth == 14 else "answered", f"q{depth}")
            for depth in range(15)
        )


@pytest.mark.parametrize("width", [36, 80, 200])
def test_a_deep_walk_wraps_inside_the_pane(width: int) -> None:
    async def main() -> tuple[str, int]:
        app = TreeApp()
        async with app.run_test(size=(width, 60)) as pilot:
            await pilot.pause()
            lines = app.query_one(_TreeLines)
            return lines.render().plain, lines.content_size.width

    text, room = asyncio.run(asyncio.wait_for(main(), 30))
    rows = text.splitlines()
    assert all(len(row) <= room for row in rows), [row for row in rows if len(row) > room]
    # Every label is whole: its words, in order, across its rows (nothing cut, no letters scattered).
    assert " ".join(text.split()).count(QUESTION) == 15
