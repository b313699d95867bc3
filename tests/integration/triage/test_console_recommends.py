"""Pilot: the console shows CORRUPT and recommends data-recovery (P0) for a corrupt serving node read over HTTP.

A real lsm node serving with its scrub on, a flipped byte in an SSTable, a config with its URL only
(the console on another host): the card turns ``✖ CORRUPT``; Triage, every probe's answer accepted
with ``a``, ends at data corruption, P0, with data-recovery first, and the answers came from the
node's own report (file and offset), not from its files.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from console_testkit import screen_text
from triage_kit import Fleet

from console.adapters.triage_adapter import PlaybookTriage
from console.config import load_config
from console.tui.launch import build_app
from console.tui.widgets.node_card import NodeCard
from faults import inject


async def wait_for(pilot: Any, condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"{what}: not within {seconds} s; the screen:\n{screen_text(pilot.app)}")


def test_a_corrupt_serving_node_shows_corrupt_and_triages_to_data_recovery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRCONSOLE_STATE_DIR", str(tmp_path / "state"))
    fleet = Fleet(tmp_path / "fleet", "single", "lsm", extra=["--scrub-interval", "1"])
    try:
        fleet.start()
        flipped = inject("sstable-corrupt", fleet.nodes["n1"].data_dir, seed=3).changes[0]
        app = build_app(
            mode="interactive",
            theme=None,
            read_only=False,
            config=load_config(fleet.config(remote=True)),
            watch_terminal=False,
        )

        async def main() -> tuple[str, PlaybookTriage]:
            async with app.run_test(size=(140, 45)) as pilot:
                await wait_for(
                    pilot,
                    lambda: any("✖ CORRUPT" in card.render_text() for card in app.screen.query(NodeCard)),
                    20,
                    "the card CORRUPT",
                )
                app.selected_node = "n1"
                await pilot.press("2")
                await wait_for(pilot, lambda: "n1" in app.triage_sessions, 20, "the walk built")
                view = app.triage_sessions["n1"]
                assert isinstance(view, PlaybookTriage)
                while not view.current().is_leaf:
                    await wait_for(pilot, lambda: view.probed(view.current().id) is not None, 20, "the evidence")
                    assert view.probed(view.current().id).answer is not None, view.current().question  # type: ignore[union-attr]
                    await pilot.press("a")
                    await pilot.pause(0.05)
                await pilot.pause(0.3)
                return screen_text(app), view

        text, view = asyncio.run(main())
    finally:
        fleet.close()
    assert [item.playbook_id for item in view.recommended()][0] == "data-recovery"
    assert (view.fault(), view.severity()) == ("data-corruption", "P0")
    assert "✖ P0 data-corruption" in text and "data-recovery" in text
    corruption = next(step for step in view.path() if step.node_id == "corruption")
    assert corruption.probe.evidence.startswith("n1 reports corrupt:") and flipped.file in corruption.probe.evidence
    assert "found by scrub" in corruption.probe.evidence
