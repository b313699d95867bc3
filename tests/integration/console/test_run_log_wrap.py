"""The Run screen's log wraps to its pane, loses no character at the edge, and re-wraps on resize."""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult

from console.adapters.run_state import LogLine
from console.tui.widgets.run_log import RunLog

LONG = (
    " 3. repair: Repair: what cannot be kept goes to quarantine, and is listed ⚠ destructive: asks for the node name "
    "(if steps.check.ok == false)"
)


class LogApp(App[None]):
    CSS = "RunLog { border: round white; padding: 0 1; height: 1fr; }"

    def compose(self) -> ComposeResult:
        yield RunLog(id="run-log")

    def on_mount(self) -> None:
        self.query_one(RunLog).show([LogLine("info", LONG), LogLine("warning", "short")])


def rows(app: App[None]) -> list[str]:
    log = app.query_one(RunLog)
    return [strip.text.rstrip() for strip in log.lines]


def test_a_long_line_wraps_within_the_pane_and_rewraps_on_resize() -> None:
    async def main() -> tuple[list[str], int, list[str], int]:
        app = LogApp()
        async with app.run_test(size=(60, 20)) as pilot:
            await pilot.pause()
            await pilot.pause()
            narrow, narrow_width = rows(app), app.query_one(RunLog).scrollable_content_region.width
            await pilot.resize_terminal(200, 20)
            for _ in range(50):
                await pilot.pause(0.02)
                if len(rows(app)) == 2:
                    break
            return narrow, narrow_width, rows(app), app.query_one(RunLog).scrollable_content_region.width

    narrow, narrow_width, wide, wide_width = asyncio.run(asyncio.wait_for(main(), 30))
    assert len(narrow) >= 3 and all(len(row) <= narrow_width for row in narrow), (narrow_width, narrow)
    assert " ".join(row.strip() for row in narrow[:-1]).split() == LONG.split()  # no character lost at the edge
    assert wide == [LONG.rstrip(), "⚠ short"] and len(LONG) <= wide_width
