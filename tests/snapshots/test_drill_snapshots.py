"""Drill mode from the fixed fleet at a frozen clock: the Drill screen with the clock running (every
theme at 80x24, 120x40 and 200x60; the default theme at the two smaller sizes in the fast suite),
the clock line on the Overview, and the screen once the drill is measured."""

from __future__ import annotations

from datetime import UTC, timedelta
from pathlib import Path

import pytest
from console_testkit import FROZEN, fixture_ticks, frozen_clock
from snapshot_grid import grid
from textual.pilot import Pilot

from console.adapters.drill_sandbox import DrillSandbox
from console.tui.drill_mode import DrillApp
from console.tui.themes import load_theme
from drills import SCENARIOS, DrillResult


def drill_fixture_app(theme: str = "dark") -> DrillApp:
    """sstable-corrupt on ledger, injected 42 s before the frozen clock; nothing on disk is read."""
    drill = DrillSandbox(
        SCENARIOS["sstable-corrupt"],
        "lsm",
        Path("/srv/drill-sandbox"),
        {"summary": "flipped 16 bytes of a data block in sstables/000002.sst"},
        "flipped 16 bytes of a data block in sstables/000002.sst",
        0.0,
        FROZEN - timedelta(seconds=42),
        500,
        node_name="ledger",
    )
    return DrillApp(
        drill,
        report_path=Path("/srv/reports/drill.md"),
        initial=fixture_ticks(),
        clock=frozen_clock,
        tz=UTC,
        refresh_seconds=None,
        theme=load_theme(theme),
    )


async def settle(pilot: Pilot) -> None:
    await pilot.pause()
    pilot.app.clear_notifications()
    await pilot.pause()


@pytest.mark.parametrize(("theme", "size"), grid(["dark-80x24", "dark-120x40"]))
def test_drill_screen_running(snap_compare, theme: str, size: tuple[int, int]) -> None:
    assert snap_compare(drill_fixture_app(theme), terminal_size=size, run_before=settle)


def test_drill_clock_on_the_overview(snap_compare) -> None:
    async def overview(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press("1")
        await settle(pilot)

    assert snap_compare(drill_fixture_app(), terminal_size=(80, 24), run_before=overview)


def test_drill_screen_measured(snap_compare) -> None:
    async def measured(pilot: Pilot) -> None:
        await settle(pilot)
        app = pilot.app
        assert isinstance(app, DrillApp)
        app.drill_result = DrillResult("sstable-corrupt", "lsm", 12.4, 0.0, 500, 0, 30, 0, True, recovered=True)
        app.drill_report = app.report_path
        app.drill_revision += 1
        await settle(pilot)

    assert snap_compare(drill_fixture_app(), terminal_size=(80, 24), run_before=measured)
