"""Keyboard first, as a responder meets the console: a card has the focus on open (enter triages at
once), `?` says how it closes and closes with `?` or escape, one meaning per key across the screens
(or the footer names it), and at 80x24 every screen's key bar keeps Help and Quit."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from console_testkit import FROZEN, fixture_app, fixture_ticks, frozen_clock, screen_text
from textual.binding import Binding

from console.adapters.drill_sandbox import DrillSandbox
from console.tui.app import DrConsoleApp
from console.tui.drill_mode import DrillApp
from console.tui.screens.drill import DrillScreen
from console.tui.screens.help import HelpScreen
from console.tui.screens.node import NodeScreen
from console.tui.screens.overview import OverviewScreen
from console.tui.screens.run import RunScreen
from console.tui.screens.timeline import TimelineScreen
from console.tui.screens.triage import TriageScreen
from console.tui.widgets.alert_strip import AlertStrip
from console.tui.widgets.key_bar import KeyBar
from console.tui.widgets.node_card import NodeCard
from drills import SCENARIOS


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_a_card_has_the_focus_on_open_and_enter_triages_it() -> None:
    async def main():
        app = fixture_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.pause()
            focused = app.focused
            name = focused.node_name if isinstance(focused, NodeCard) else None
            await pilot.press("enter")  # no tab, no j first
            await pilot.pause()
            return name, app.selected_node, type(app.screen)

    name, selected, screen = run(main())
    # The worst node (cache, DOWN) is selected first, and its card is the focused one.
    assert name == "cache" and selected == "cache"
    assert screen is TriageScreen


def test_the_focus_comes_back_to_a_card_when_the_overview_shows_again() -> None:
    async def main():
        app = fixture_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.press("l")  # the next card
            await pilot.pause()
            await pilot.press("4")
            await pilot.pause()
            await pilot.press("1")
            await pilot.pause()
            await pilot.pause()
            focused = app.focused
            return focused.node_name if isinstance(focused, NodeCard) else None, app.selected_node

    focused, selected = run(main())
    assert focused is not None and focused == selected


def test_help_says_how_it_closes_and_closes_with_question_mark_or_escape() -> None:
    async def main():
        app = fixture_app()
        closed_by = []
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            text = screen_text(app)
            for key in ("question_mark", "escape"):
                if not isinstance(app.screen, HelpScreen):
                    await pilot.press("question_mark")
                    await pilot.pause()
                await pilot.press(key)
                await pilot.pause()
                closed_by.append((key, type(app.screen)))
        return text, closed_by

    text, closed_by = run(main())
    assert "escape or ? closes this help" in text
    assert closed_by == [("question_mark", OverviewScreen), ("escape", OverviewScreen)]


def test_a_key_means_one_thing_across_the_screens_or_the_key_bar_says_which() -> None:
    """Where a key does two different things, every meaning but one is shown in the key bar of its
    screen (drill mode's health check was on "h", the Overview's previous card: now "v")."""
    meanings: dict[str, dict[str, list[Binding]]] = defaultdict(lambda: defaultdict(list))
    for owner in (
        DrConsoleApp,
        DrillApp,
        OverviewScreen,
        NodeCard,
        AlertStrip,
        TriageScreen,
        RunScreen,
        TimelineScreen,
        NodeScreen,
        DrillScreen,
    ):
        for binding in owner.BINDINGS:
            if isinstance(binding, Binding):
                # Moving in whatever has the focus (cards, alerts, a list) is one meaning: "Next alert" is "Next".
                meaning = (
                    binding.description.split()[0]
                    if binding.description.split()[:1] in (["Next"], ["Previous"])
                    else binding.description
                )
                for key in binding.key.split(","):
                    meanings[key.strip()][meaning].append(binding)
    for key, by_meaning in meanings.items():
        if len(by_meaning) < 2:
            continue
        unnamed = [meaning for meaning, bindings in by_meaning.items() if not all(b.show for b in bindings)]
        assert len(unnamed) <= 1, f"{key!r} means {sorted(by_meaning)}; the key bar names none of {unnamed[1:]}"
    assert set(meanings["a"]) == {"Accept"}  # Alerts moved to "!"
    assert set(meanings["h"]) == {"Previous"}


def key_bar_text(app: DrConsoleApp) -> str:
    return app.screen.query_one(KeyBar).render().plain


def drill_fixture_app() -> DrillApp:
    drill = DrillSandbox(
        SCENARIOS["sstable-corrupt"],
        "lsm",
        Path("/srv/drill-sandbox"),
        {"summary": "flipped 16 bytes"},
        "flipped 16 bytes",
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
    )


@pytest.mark.parametrize("mode", ["interactive", "read-only", "dashboard", "drill"])
def test_at_80x24_every_screen_keeps_help_and_quit(mode: str) -> None:
    async def main():
        if mode == "drill":
            app: DrConsoleApp = drill_fixture_app()
        else:
            app = fixture_app(mode="dashboard" if mode == "dashboard" else "interactive", read_only=mode == "read-only")
        bars = {}
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            bars[type(app.screen).__name__] = key_bar_text(app)
            if mode != "dashboard":
                screens = ["overview", "triage", "run", "timeline", "node"]
                for name in screens:
                    app.action_show_screen(name)
                    await pilot.pause()
                    await pilot.pause()
                    bars[type(app.screen).__name__] = key_bar_text(app)
                if mode == "drill":
                    await pilot.press("5")
                    await pilot.pause()
                    bars[type(app.screen).__name__] = key_bar_text(app)
                # A focused card adds its own keys (the fullest bar of all).
                app.action_show_screen("overview")
                await pilot.pause()
                await pilot.pause()
                bars["OverviewScreen+card"] = key_bar_text(app)
        return bars

    bars = run(main())
    expected = {
        "dashboard": {"DashboardScreen"},
        "drill": {
            "DrillScreen",
            "OverviewScreen",
            "TriageScreen",
            "RunScreen",
            "TimelineScreen",
            "NodeScreen",
            "OverviewScreen+card",
        },
    }
    assert set(bars) == expected.get(
        mode, {"OverviewScreen", "TriageScreen", "RunScreen", "TimelineScreen", "NodeScreen", "OverviewScreen+card"}
    )
    for screen, text in bars.items():
        assert len(text) <= 80
        assert "? Help" in text and "^q Quit" in text, f"{screen} at 80 columns: {text!r}"
        if mode == "drill" and screen != "DrillScreen":
            assert "5 Dr" in text or "5-" in text or "-5" in text, f"{screen}: the drill's key is gone: {text!r}"
