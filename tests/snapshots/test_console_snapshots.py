"""Every screen, from the fixed fleet at a frozen clock: overview, dashboard and help in every theme
at 80x24 and 120x40; triage (the real decision tree), run, timeline and the confirmation dialog in the
default theme."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from console.run_stub import SimulatedLauncher
from console.screens.confirm import ConfirmScreen
from console.triage_view import Recommendation
from console_testkit import fixture_app, frozen_clock

THEMES = ["dark", "light", "wall", "colorblind"]
SIZES = [(80, 24), (120, 40)]


async def settle(pilot: Pilot) -> None:
    pilot.app.desk.flush(5)  # the incident desk's writes are read back before the picture is taken
    await pilot.pause()
    pilot.app.clear_notifications()
    await pilot.pause()


def size_id(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


@pytest.mark.parametrize("size", SIZES, ids=size_id)
@pytest.mark.parametrize("theme", THEMES)
def test_overview(snap_compare, theme: str, size: tuple[int, int]) -> None:
    assert snap_compare(fixture_app(theme=theme), terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES, ids=size_id)
@pytest.mark.parametrize("theme", THEMES)
def test_dashboard(snap_compare, theme: str, size: tuple[int, int]) -> None:
    assert snap_compare(fixture_app(mode="dashboard", theme=theme), terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES, ids=size_id)
@pytest.mark.parametrize("theme", THEMES)
def test_help(snap_compare, theme: str, size: tuple[int, int]) -> None:
    async def open_help(pilot: Pilot) -> None:
        await pilot.press("question_mark")
        await settle(pilot)

    assert snap_compare(fixture_app(theme=theme), terminal_size=size, run_before=open_help)


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
    """ledger: triage down to disk nearly full (the probes' answers) -> a run -> start; then confirm and finish,
    or stop at the dialog. The run is the simulated launcher's plan of the same name."""
    app = pilot.app
    await walk_to_triage(pilot, (None,) * 7)
    view = app.triage_sessions["ledger"]
    assert [r.playbook_id for r in view.recommended()] == ["disk-space"]
    app.choose_playbook(Recommendation("free-disk-space", "Free disk space safely", "P1", destructive=True,
                                       target_rto_seconds=1800), "ledger")
    app.action_start_run()
    for _ in range(200):
        if isinstance(app.screen, ConfirmScreen):
            break
        await pilot.pause(0.01)
    app.screen.query_one(Input).cursor_blink = False
    if finish:
        app.screen.dismiss("ledger")
        for _ in range(200):
            if app.run_state.finished is not None:
                break
            await pilot.pause(0.01)
    await settle(pilot)


def flow_app():
    return fixture_app(launcher=SimulatedLauncher(step_seconds=0, clock=frozen_clock))


@pytest.mark.parametrize("size", SIZES, ids=size_id)
def test_triage(snap_compare, size: tuple[int, int]) -> None:
    async def triage(pilot: Pilot) -> None:
        await walk_to_triage(pilot, (None, None, None, None))  # at "Is data corruption detected?", with evidence
        await settle(pilot)

    assert snap_compare(flow_app(), terminal_size=size, run_before=triage)


@pytest.mark.parametrize("size", SIZES, ids=size_id)
def test_run_finished(snap_compare, size: tuple[int, int]) -> None:
    async def run(pilot: Pilot) -> None:
        await walk_to_run(pilot, finish=True)

    assert snap_compare(flow_app(), terminal_size=size, run_before=run)


def test_confirmation_dialog(snap_compare) -> None:
    async def confirm(pilot: Pilot) -> None:
        await walk_to_run(pilot, finish=False)
        await pilot.press(*"ledg")
        await settle(pilot)

    assert snap_compare(flow_app(), terminal_size=(80, 24), run_before=confirm)


@pytest.mark.parametrize("size", SIZES, ids=size_id)
def test_timeline(snap_compare, size: tuple[int, int]) -> None:
    async def timeline(pilot: Pilot) -> None:
        await walk_to_run(pilot, finish=True)
        pilot.app.action_show_screen("timeline")
        await settle(pilot)

    assert snap_compare(flow_app(), terminal_size=size, run_before=timeline)
