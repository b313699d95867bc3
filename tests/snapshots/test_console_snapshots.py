"""Every screen, from the fixed fleet at a frozen clock, at 80x24, 120x40 and 200x60 in every theme:
overview, dashboard (the wall), help, node trends, the Run playbook… picker, triage (the real
decision tree), run, timeline and the confirmation dialog.

The Run screen is the real one on a real run: ledger is a real lsm data dir with a flipped SSTable
byte (at a fixed path, with a fixed run id, so the picture is the same every time), recovered by
the playbooks' runner through the console's launcher.

The fast suite keeps a representative set (the default theme at the sizes where layouts differ,
every theme where colours are the point); the rest of the grid is marked ``slow`` (``make test-all``).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from console_testkit import FROZEN, fixture_app
from snapshot_grid import EVERY_THEME_TWO_SIZES, grid
from textual.pilot import Pilot
from textual.widgets import Input

from console.adapters.run_adapter import RunLauncher
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.playbook_picker import PlaybookPicker
from engines import create_engine
from faults import inject
from fleet import NodeSpec


async def settle(pilot: Pilot) -> None:
    pilot.app.desk.flush(5)  # the incident desk's writes are read back before the picture is taken
    await pilot.pause()
    pilot.app.clear_notifications()
    await pilot.pause()


@pytest.mark.parametrize(("theme", "size"), grid([*EVERY_THEME_TWO_SIZES, "dark-200x60"]))
def test_overview(snap_compare, theme: str, size: tuple[int, int]) -> None:
    assert snap_compare(fixture_app(theme=theme), terminal_size=size, run_before=settle)


@pytest.mark.parametrize(("theme", "size"), grid([*EVERY_THEME_TWO_SIZES, "wall-200x60"]))
def test_dashboard(snap_compare, theme: str, size: tuple[int, int]) -> None:
    assert snap_compare(fixture_app(mode="dashboard", theme=theme), terminal_size=size, run_before=settle)


@pytest.mark.parametrize(("theme", "size"), grid(EVERY_THEME_TWO_SIZES))
def test_help(snap_compare, theme: str, size: tuple[int, int]) -> None:
    async def open_help(pilot: Pilot) -> None:
        await pilot.press("question_mark")
        await settle(pilot)

    assert snap_compare(fixture_app(theme=theme), terminal_size=size, run_before=open_help)


@pytest.mark.parametrize(("theme", "size"), grid(["dark-80x24", "dark-120x40", "wall-200x60"]))
def test_node_trends(snap_compare, theme: str, size: tuple[int, int]) -> None:
    async def trends(pilot: Pilot) -> None:
        await pilot.pause()
        pilot.app.selected_node = "ledger"
        pilot.app.action_show_node()
        await settle(pilot)

    assert snap_compare(fixture_app(theme=theme), terminal_size=size, run_before=trends)


@pytest.mark.parametrize(("theme", "size"), grid(["dark-80x24", "dark-120x40"]))
def test_playbook_picker(snap_compare, flow_app, theme: str, size: tuple[int, int]) -> None:
    """Run playbook… with "recover" typed: the library filtered, the closest first, the rest marked."""

    async def picker(pilot: Pilot) -> None:
        app = pilot.app
        await pilot.pause()
        app.selected_node = "ledger"
        app.action_pick_playbook()
        for _ in range(500):  # the library loads in a worker thread
            if isinstance(app.screen, PlaybookPicker) and app.screen.choices:
                break
            await pilot.pause(0.02)
        app.screen.query_one(Input).cursor_blink = False
        await pilot.press(*"recover")
        await settle(pilot)

    assert snap_compare(flow_app(theme=theme), terminal_size=size, run_before=picker)


async def walk_to_triage(pilot: Pilot, answers: tuple[bool | None, ...]) -> None:
    """ledger in the real Triage screen (the playbooks' tree, answered from the fixture snapshot) with
    ``answers`` given (None: accept the probe's, once its worker has answered). Keys are tested
    elsewhere; here the app's actions are called directly, which keeps these tests quick."""
    app = pilot.app
    await pilot.pause()
    app.selected_node = "ledger"
    app.action_show_screen("triage")
    for answer in answers:
        for _ in range(400):  # the walk is built, and each probe runs, in a worker thread
            view = app.triage_sessions.get("ledger")
            if view is not None and view.probed(view.current().id) is not None:
                break
            await pilot.pause(0.01)
        if answer is None:
            app.screen.action_accept()
        else:
            app.screen.action_answer(answer)
    for _ in range(400):
        view = app.triage_sessions.get("ledger")
        if view is not None and (view.current().is_leaf or view.probed(view.current().id) is not None):
            break
        await pilot.pause(0.01)
    await pilot.pause()


async def walk_to_run(pilot: Pilot, *, finish: bool) -> None:
    """ledger: the real triage down to its conclusion, then recover-lsm on its real data dir; confirm and finish,
    or stop at the dialog."""
    app = pilot.app
    await walk_to_triage(pilot, (None,) * 7)
    app.desk.flush(5)  # the answers are on the incident before the run starts (one frozen moment: order is all)
    app.choose("recover-lsm", "ledger")
    for _ in range(1000):
        if app.run_state.plan is not None:
            break
        await pilot.pause(0.02)
    app.action_start_run()
    for _ in range(1000):  # the dialog is up and composed (its Input exists)
        if isinstance(app.screen, ConfirmScreen) and app.screen.query(Input):
            break
        await pilot.pause(0.02)
    app.screen.query_one(Input).cursor_blink = False
    if not finish:  # the log under the dialog: every line written, scrolled to its end (a loaded machine is slow)
        log_pane = app.get_screen("run").query_one("#run-log")
        for _ in range(500):
            if log_pane._written == len(app.run_state.log):
                break
            await pilot.pause(0.02)
        await pilot.pause(0.3)
        log_pane.scroll_end(animate=False, immediate=True)
        await pilot.pause(0.1)
    if finish:
        app.screen.dismiss("ledger")
        for _ in range(1000):
            if app.run_state.done:
                break
            await pilot.pause(0.02)
        log_pane = app.screen.query_one("#run-log")
        app.desk.flush(5)
        for _ in range(500):  # the log pane has written every line of the run (a loaded machine is slow)
            if log_pane._written == len(app.run_state.log):
                break
            await pilot.pause(0.02)
        await pilot.pause(0.3)
        log_pane.scroll_end(animate=False, immediate=True)
        await pilot.pause(0.1)
    await settle(pilot)


class FrozenTime:
    """``time`` as the run's actions and incident store see it here: stopped at the fleet's frozen moment."""

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)

    @staticmethod
    def monotonic() -> float:
        return 1000.0

    @staticmethod
    def time() -> float:
        return FROZEN.timestamp()

    @staticmethod
    def gmtime(seconds: float | None = None) -> time.struct_time:
        return time.gmtime(FROZEN.timestamp())


@pytest.fixture
def flow_app(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The fixed fleet with ledger as a real corrupt lsm data dir at a fixed path, and a fixed run id."""
    root = Path("/tmp/drconsole-snapshots") / request.node.name.replace("[", "-").replace("]", "")
    shutil.rmtree(root, ignore_errors=True)
    data = root / "ledger"
    with create_engine(data, backend="lsm") as engine:
        for index in range(200):
            engine.put(f"entry:{index:04d}".encode(), b"balance" * 10)
    inject("sstable-corrupt", data, seed=7)
    # The frozen clock of the fleet, for the run too: its id, its incident's id, the durations it reports.
    monkeypatch.setattr("playbooks.runner.new_run_id", lambda: "20240514-120409-000-snap")
    monkeypatch.setattr("playbooks.actions.engine_actions.time", FrozenTime())
    monkeypatch.setattr("playbooks.incident_store.time", FrozenTime())
    monkeypatch.setattr("playbooks.runner.time", FrozenTime())
    yield lambda theme="dark": fixture_app(
        theme=theme, launcher=RunLauncher([NodeSpec(name="ledger", engine="lsm", data_dir=data)])
    )
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize(("theme", "size"), grid(["dark-80x24", "dark-120x40", "colorblind-200x60"]))
def test_triage(snap_compare, theme: str, size: tuple[int, int]) -> None:
    async def triage(pilot: Pilot) -> None:
        await walk_to_triage(pilot, (None, None, None, None))  # at "Is data corruption detected?", with evidence
        await settle(pilot)

    assert snap_compare(fixture_app(theme=theme), terminal_size=size, run_before=triage)


@pytest.mark.parametrize(("theme", "size"), grid(["dark-80x24", "dark-120x40"]))
def test_run_finished(snap_compare, flow_app, theme: str, size: tuple[int, int]) -> None:
    async def run(pilot: Pilot) -> None:
        await walk_to_run(pilot, finish=True)

    assert snap_compare(flow_app(theme=theme), terminal_size=size, run_before=run)


@pytest.mark.parametrize(("theme", "size"), grid(["dark-80x24"]))
def test_confirmation_dialog(snap_compare, flow_app, theme: str, size: tuple[int, int]) -> None:
    async def confirm(pilot: Pilot) -> None:
        await walk_to_run(pilot, finish=False)
        await pilot.press(*"ledg")
        await settle(pilot)

    assert snap_compare(flow_app(theme=theme), terminal_size=size, run_before=confirm)


@pytest.mark.parametrize(("theme", "size"), grid(["dark-80x24", "dark-120x40"]))
def test_timeline(snap_compare, flow_app, theme: str, size: tuple[int, int]) -> None:
    async def timeline(pilot: Pilot) -> None:
        await walk_to_run(pilot, finish=True)
        pilot.app.action_show_screen("timeline")
        await settle(pilot)

    assert snap_compare(flow_app(theme=theme), terminal_size=size, run_before=timeline)
