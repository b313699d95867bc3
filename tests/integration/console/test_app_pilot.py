"""The app driven with Textual's Pilot on the fixed fleet: screens, keys, palette, dialogs, signals."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from console_testkit import fixture_app, fixture_ticks, frozen_clock, screen_text, tree_digest
from textual.command import CommandPalette
from textual.widgets import Input

from console.adapters.run_adapter import RunLauncher
from console.tui.app import DrConsoleApp
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.dashboard import DashboardScreen
from console.tui.screens.error_dialog import ErrorDialog
from console.tui.screens.help import HelpScreen
from console.tui.screens.overview import OverviewScreen
from console.tui.screens.run import RunScreen
from console.tui.screens.timeline import TimelineScreen
from console.tui.screens.triage import TriageScreen
from engines import create_engine
from faults import inject
from fleet import FixtureSource, NodeSpec


def run(coroutine):
    return asyncio.run(coroutine)


def test_the_overview_fits_80x24_and_says_every_status_in_words() -> None:
    async def main():
        app = fixture_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            return screen_text(app)

    text = run(main())
    for title in (
        "orders-a · lsm · primary · e3",
        "orders-b · lsm · standby · e3",
        "ledger · cow · primary · e1",
        "cache · rocksdb · primary · e2",
    ):
        assert title in text
    for words in ("✔ OK", "▲ DEGRADED", "✖ DOWN", "✖ CRIT", "▲ WARN", "✔ verified", "▲ unverified"):
        assert words in text
    assert "unreachable since 12:03:31 UTC" in text and "since 12:03:31 (<1m)" in text
    assert "lag  4,710 rec" in text
    assert len(text.splitlines()) == 24 and max(len(line) for line in text.splitlines()) <= 80


def test_keys_move_between_screens_and_help_lists_them() -> None:
    async def main():
        app = fixture_app()
        seen = []
        async with app.run_test(size=(80, 24)) as pilot:
            for key in ("2", "3", "4", "1"):
                await pilot.press(key)
                seen.append(type(app.screen))
            await pilot.press("question_mark")
            seen.append(type(app.screen))
            help_text = screen_text(app)
            await pilot.press("escape")
            seen.append(type(app.screen))
            await pilot.press("ctrl+p")
            await pilot.pause()
            seen.append(type(app.screen))
            await pilot.press("escape")
            await pilot.press("ctrl+q")
        return seen, help_text, app.return_code

    seen, help_text, code = run(main())
    assert seen == [TriageScreen, RunScreen, TimelineScreen, OverviewScreen, HelpScreen, OverviewScreen, CommandPalette]
    assert "command palette" in help_text and "Accept" in help_text
    assert code == 0


def test_a_palette_command_is_run_by_typing_it() -> None:
    async def main():
        app = fixture_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("ctrl+p")
            await pilot.pause()
            await pilot.press(*"timeline")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await pilot.pause()
            return type(app.screen), [command.title for command in app.get_system_commands(app.screen)]

    screen, titles = run(main())
    assert screen is TimelineScreen
    assert titles == [
        "Overview",
        "Triage",
        "Run",
        "Timeline",
        "Node trends",
        "Run playbook…",
        "Start run",
        "Plan run",
        "Cancel run",
        "Resume run",
        "Export incident report",
        "Help",
        "Quit",
        "Theme",
    ]


def test_enter_on_a_card_triages_that_node_and_a_fault_found_opens_the_incident() -> None:
    async def main():
        app = fixture_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press("h")  # cache (the worst node, selected first) -> ledger
            await pilot.press("enter")
            await pilot.pause()
            app.desk.flush(5)
            await pilot.pause()
            before = app.incident  # opening Triage opens nothing
            for _ in range(400):  # the real tree: each probe's answer accepted once it is in, down to a leaf
                view = app.triage_sessions.get("ledger")
                if view is not None and view.current().is_leaf:
                    break
                if view is not None and view.probed(view.current().id) is not None:
                    await pilot.press("a")
                await pilot.pause(0.02)
            for _ in range(100):
                app.desk.flush(5)
                await pilot.pause(0.02)
                if app.incident is not None:
                    break
            return app, type(app.screen), before

    app, screen, before = run(main())
    assert app.selected_node == "ledger" and screen is TriageScreen and before is None
    incident = app.incident
    # The leaf is "disk nearly full": its P1 is the diagnosis' severity (playbooks/severity.py), not the alerts'.
    assert incident is not None and incident.severity == "P1" and incident.target == "ledger"
    kinds = [event.kind for event in incident.events]
    answers = [event for event in incident.events if event.kind == "answer"]
    assert kinds[0] == "alert" and "opened" in kinds and len(answers) >= 4
    assert any("disk" in event.message and "91" in event.message for event in answers)


def test_the_confirmation_needs_the_exact_node_name(tmp_path: Path) -> None:
    """ledger of the recorded fleet is a real corrupt lsm data dir here: a wrong name never lets the step run."""
    data = tmp_path / "ledger"
    with create_engine(data, backend="lsm") as engine:
        for index in range(100):
            engine.put(f"k{index}".encode(), b"v" * 40)
    inject("sstable-corrupt", data, seed=3)
    before = tree_digest(data)

    async def main():
        app = fixture_app(
            launcher=RunLauncher([NodeSpec(name="ledger", engine="lsm", data_dir=data)]), report_dir=tmp_path
        )
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            app.choose("recover-lsm", "ledger")
            await pilot.press("s")
            for _ in range(500):
                if isinstance(app.screen, ConfirmScreen):
                    break
                await pilot.pause(0.02)
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press(*"ledgr", "enter")
            still_asking = isinstance(app.screen, ConfirmScreen)
            button_disabled = app.screen.query_one("#confirm-run").disabled
            app.screen.query_one(Input).value = ""
            await pilot.press("escape")
            for _ in range(500):  # the run over, and its dry-run plan (asked for at choose) back
                if app.run_state is not None and app.run_state.done and not app.run_state.planning:
                    break
                await pilot.pause(0.02)
            app.desk.flush(5)
            await pilot.pause(0.1)
            return still_asking, button_disabled, app

    still_asking, button_disabled, app = run(main())
    assert still_asking and button_disabled
    assert app.run_state.status == "refused" and app.run_state.result.status == "refused"
    assert app.run_state.statuses["repair"] == "refused"
    assert app.run_state.statuses["final-verify"] == "not-run"
    # The decline is on the incident the triage opened (ledger's), the one the Timeline shows.
    assert app.timeline_incident() is not None and app.timeline_incident().target == "ledger"
    assert any(event.message == "repair declined" for event in app.timeline())
    snapshot_copies = {path for path in tree_digest(data) if path.startswith(".quarantine")}
    assert {path: digest for path, digest in tree_digest(data).items() if path not in snapshot_copies} == before


def test_the_refresh_worker_feeds_history_and_the_cards() -> None:
    async def main():
        app = DrConsoleApp(source=FixtureSource(fixture_ticks()), refresh_seconds=0.01, clock=frozen_clock)
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(100):
                if len(app.history.series("orders-a", "write_rate")) >= 9 and app.snapshot == fixture_ticks()[-1]:
                    break
                await pilot.pause(0.02)
            return app

    app = run(main())
    # The recording's ticks are 1 s apart, each in a bucket of its own; the last one is still filling.
    assert len(app.history.series("orders-a", "write_rate")) >= 9
    assert app.snapshot == fixture_ticks()[-1]


class BrokenSource:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def collect(self):
        raise self.error

    async def aclose(self) -> None:
        return None


def test_a_source_failure_is_reported_and_a_bug_in_a_worker_becomes_a_dialog() -> None:
    async def main(error: BaseException):
        app = DrConsoleApp(source=BrokenSource(error), refresh_seconds=0.05, clock=frozen_clock)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.3)
            return app, type(app.screen)

    app, screen = run(main(OSError(5, "Input/output error")))
    assert screen is OverviewScreen
    assert [event.kind for event in app.events] == ["source"]  # once, not once per tick
    assert "Input/output error" in app.events[0].message
    app, screen = run(main(RuntimeError("a bug")))
    assert screen is ErrorDialog


def test_sighup_ends_the_app_cleanly() -> None:
    async def main():
        app = fixture_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            os.kill(os.getpid(), signal.SIGHUP)
            for _ in range(100):
                if app.exit_reason:
                    break
                await pilot.pause(0.02)
        return app

    previous = signal.getsignal(signal.SIGHUP), signal.getsignal(signal.SIGCONT)
    signal.signal(signal.SIGCONT, lambda *_: None)  # as Textual's terminal driver installs one
    try:
        app = run(main())
        # The kernel follows a hang-up with SIGCONT; its handler (Textual's would restart the
        # terminal on the dead tty) must have been disarmed by ours.
        assert signal.getsignal(signal.SIGCONT) == signal.SIG_DFL
        assert signal.getsignal(signal.SIGHUP) == previous[0]  # ours is gone with the app
    finally:
        signal.signal(signal.SIGHUP, previous[0])
        signal.signal(signal.SIGCONT, previous[1])
    assert app.exit_reason == "SIGHUP" and app.return_code == 0


def test_the_dashboard_has_only_its_own_screen() -> None:
    async def main():
        app = fixture_app(mode="dashboard")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            for key in ("1", "2", "3", "4", "i", "enter", "tab"):
                await pilot.press(key)
            return type(app.screen), screen_text(app)

    screen, text = run(main())
    assert screen is DashboardScreen
    assert "✔ 1 OK  ▲ 1 LAGGING  ▲ 1 DEGRADED  ✖ 1 DOWN" in text  # orders-b is 14.6 s behind


@pytest.mark.parametrize("theme", ["dark", "light", "wall", "colorblind"])
def test_every_theme_starts(theme: str) -> None:
    async def main():
        app = fixture_app(theme=theme)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            return app.theme

    assert run(main()) == f"drconsole-{theme}"


def test_a_split_brain_shows_a_banner_in_words() -> None:
    from fleet import NodeSnapshot, NodeSpec, Thresholds, finalize

    specs = [NodeSpec(name="a", url="http://a"), NodeSpec(name="b", url="http://b", role="standby", upstream="a")]
    nodes = [
        NodeSnapshot(name=name, engine="lsm", role="primary", epoch=7, health_reason="serving") for name in ("a", "b")
    ]
    snapshot = finalize(nodes, specs, Thresholds(), fixture_ticks()[-1].taken_at)

    async def main():
        app = fixture_app(ticks=[snapshot])
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            return screen_text(app)

    text = run(main())
    assert "✖ SPLIT BRAIN: a and b are primaries in the same epoch" in text
    assert "repl ✖ SPLIT BRAIN epoch 7" in text


def test_the_triage_palette_offers_the_answers_on_the_triage_screen_only() -> None:
    async def main():
        app = fixture_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            overview = [command.title for command in app.get_system_commands(app.screen)]
            await pilot.press("2")
            triage = [command.title for command in app.get_system_commands(app.screen)]
            accept = next(command for command in app.get_system_commands(app.screen) if command.title == "Answer no")
            await accept.callback()
            await pilot.pause()
            return overview, triage, [step.answer for step in app.triage(app.selected_node).path()]

    overview, triage, answers = run(main())
    assert "Answer yes" not in overview and {"Accept the probe's answer", "Answer yes", "Answer no"} <= set(triage)
    assert answers == [False]


def test_clicking_anywhere_on_the_dashboard_does_nothing() -> None:
    async def main():
        app = fixture_app(mode="dashboard")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            before = (len(app.events), app.incident, app.selected_node)
            for y in (0, 2, 5, 10, 17, 23):  # status bar, clock, alerts, tiles, key bar
                for x in (1, 40, 78):
                    await pilot.click(offset=(x, y))
            return type(app.screen), before, (len(app.events), app.incident, app.selected_node)

    screen, before, after = run(main())
    assert screen is DashboardScreen and before == after
