"""The console on the real playbooks: triage with the library's tree, runs with the real Runner.

A real data dir is corrupted with a ``playbooks.faults`` injector; the console opened on a config
naming it triages it (the probes' answers accepted), starts the recommended playbook, the
responder confirms its destructive step by typing the node name, and afterwards the data dir
verifies ok and the Timeline has the steps. A read-only console, and a read-only launcher,
change nothing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from console_testkit import screen_text, tree_digest
from textual.widgets import Input

from console.config import load_config
from console.launch import build_app
from console.run_adapter import PlaybookLauncher, PlaybookRun
from console.run_stub import SimulatedLauncher
from console.run_view import NeedsConfirmation, RunEvent, RunFinished, RunStarted, StepFinished, StepStarted
from console.screens.confirm import ConfirmScreen
from console.triage_adapter import PlaybookTriage, recommendation_for
from engines import create_engine
from engines.checks import verify_data_dir
from playbooks.faults import inject
from support import available_backends

FAULT = {"lsm": "sstable-corrupt", "cow": "page-corrupt", "rocksdb": "sst-corrupt"}
BACKENDS = [backend for backend in available_backends() if backend in ("lsm", "cow")]
pytestmark = pytest.mark.skipif(not BACKENDS, reason="no lsm or cow backend built yet")


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The playbooks' journal, audit log and incidents go to the test's own directory."""
    state = tmp_path / "state"
    monkeypatch.setenv("DRCONSOLE_STATE_DIR", str(state))
    return state


def corrupt_node(tmp_path: Path, backend: str, name: str = "orders") -> Path:
    data = tmp_path / "nodes" / name
    with create_engine(data, backend=backend) as engine:
        for index in range(400):
            engine.put(f"order:{index:05d}".encode(), b"paid" * 20)
    inject(FAULT[backend], data, seed=7)
    assert not verify_data_dir(data).ok
    return data


def write_config(tmp_path: Path, backend: str, name: str = "orders", *, extra: str = "") -> Path:
    path = tmp_path / "drconsole.toml"
    path.write_text(f'[[node]]\nname = "{name}"\nengine = "{backend}"\ndata_dir = "nodes/{name}"\n{extra}')
    return path


async def wait_for(pilot, condition, seconds: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not met in time")


@pytest.mark.parametrize("backend", BACKENDS)
def test_triage_and_recovery_of_a_corrupt_data_dir_through_the_console(tmp_path: Path, backend: str) -> None:
    data = corrupt_node(tmp_path, backend)
    config = load_config(write_config(tmp_path, backend))
    app = build_app(mode="interactive", theme=None, read_only=False, config=config, watch_terminal=False)
    assert isinstance(app.launcher, PlaybookLauncher)

    async def main() -> tuple[str, str]:
        async with app.run_test(size=(140, 45)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None and app.selected_node == "orders")
            await pilot.press("2")  # Triage of the selected node
            view = app.triage("orders")
            assert isinstance(view, PlaybookTriage)
            while not view.current().is_leaf:
                probe = view.probe(view.current().id)
                await pilot.press("a" if probe.answer is not None else "n")
            await pilot.pause(0.1)
            triage_text = screen_text(app)
            recommended = [r.playbook_id for r in view.recommended()]
            assert recommended[0] == "data-recovery"
            await pilot.press("enter")  # the first recommendation, into Run
            await wait_for(pilot, lambda: app.pending is not None)
            await pilot.press("s")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            app.screen.query_one(Input).value = "orders"
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.run_state is not None and app.run_state.finished is not None)
            # Nobody serves this data dir: the runner resolved the incident once its checks passed and it opened.
            await wait_for(pilot, lambda: app.incident is not None and app.incident.status == "resolved")
            await pilot.press("4")  # Timeline
            await pilot.pause(0.2)
            return triage_text, screen_text(app)

    triage_text, timeline_text = asyncio.run(main())
    assert "Is data corruption detected?" in triage_text
    assert "✖ P0 data-corruption" in triage_text  # the real tree's conclusion, severity from the table
    state = app.run_state
    assert state is not None and state.finished is not None
    assert state.finished.status == "succeeded", (state.finished, state.log[-10:])
    assert not state.simulated and state.run_id
    assert any(state.statuses.get(step.id) == "succeeded" and step.destructive for step in state.steps)
    assert verify_data_dir(data).ok
    assert app.incident is not None
    incident = app.incident
    assert incident.severity == "P0" and incident.target == "orders" and incident.resolved_at is not None
    texts = [event.message for event in incident.events]
    assert any("confirmed by typing the node name" in text for text in texts)
    assert any(text.startswith("playbook data-recovery succeeded") for text in texts)
    assert len([event for event in incident.events if event.kind == "step"]) >= 4
    finished = next(event for event in incident.events if event.kind == "run_finished")
    assert finished.data["checks_passed"] and incident.resolved_at >= finished.time
    assert "playbook data-recovery succeeded" in timeline_text and "service restored" in timeline_text


@pytest.mark.parametrize("backend", BACKENDS[:1])
def test_a_wrong_node_name_is_refused_and_a_declined_step_changes_nothing(tmp_path: Path, backend: str) -> None:
    data = corrupt_node(tmp_path, backend)
    launcher = PlaybookLauncher({"orders": data})
    triage = PlaybookTriage("orders", data, library=launcher.library)
    while not triage.current().is_leaf:
        probe = triage.probe(triage.current().id)
        triage.answer(bool(probe.answer))
    recommendation = triage.recommended()[0]
    session = launcher.start(recommendation, "orders")
    assert isinstance(session, PlaybookRun)

    async def main() -> list[RunEvent]:
        seen: list[RunEvent] = []
        async for event in session.events():
            seen.append(event)
            if isinstance(event, NeedsConfirmation):
                assert not session.confirm(event.step_id, "not-orders")
                session.decline(event.step_id)
        return seen

    events = asyncio.run(main())
    assert isinstance(events[0], RunStarted)
    last = events[-1]
    assert isinstance(last, RunFinished) and last.status == "refused"
    assert not verify_data_dir(data).ok  # nothing destructive ran


@pytest.mark.parametrize("backend", BACKENDS[:1])
def test_cancel_while_waiting_for_confirmation(tmp_path: Path, backend: str) -> None:
    data = corrupt_node(tmp_path, backend)
    launcher = PlaybookLauncher({"orders": data})
    session = launcher.start(recommendation_for(launcher.library, "data-recovery"), "orders")

    async def main() -> list[RunEvent]:
        seen: list[RunEvent] = []
        async for event in session.events():
            seen.append(event)
            if isinstance(event, NeedsConfirmation):
                session.cancel()
                assert not session.confirm(event.step_id, "orders")
        return seen

    events = asyncio.run(main())
    last = events[-1]
    assert isinstance(last, RunFinished) and last.status == "cancelled"
    assert not verify_data_dir(data).ok


@pytest.mark.parametrize("backend", BACKENDS[:1])
def test_read_only_the_real_launcher_refuses_to_run_anything(tmp_path: Path, backend: str) -> None:
    data = corrupt_node(tmp_path, backend)
    before = tree_digest(data)
    config = load_config(write_config(tmp_path, backend))
    app = build_app(mode="interactive", theme=None, read_only=True, config=config, watch_terminal=False)
    assert app.launcher is None  # a read-only console has no launcher at all

    async def main() -> None:
        async with app.run_test(size=(140, 45)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None and app.selected_node == "orders")
            await pilot.press("2")
            await pilot.press("s")
            await pilot.pause(0.2)
            app.action_start_run()
            await pilot.pause(0.2)

    asyncio.run(main())
    assert app.run_session is None
    # And the launcher itself, if one were used read-only: the runner's gate refuses every writing action.
    launcher = PlaybookLauncher({"orders": data}, read_only=True)
    session = launcher.start(recommendation_for(launcher.library, "data-recovery"), "orders")

    async def drive() -> list[RunEvent]:
        seen: list[RunEvent] = []
        async for event in session.events():
            seen.append(event)
            if isinstance(event, NeedsConfirmation):
                session.confirm(event.step_id, "orders")
        return seen

    events = asyncio.run(drive())
    last = events[-1]
    assert isinstance(last, RunFinished) and last.status == "refused"
    assert tree_digest(data) == before


def test_nodes_without_a_data_dir_get_the_real_tree_from_the_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "drconsole.toml"
    path.write_text('[[node]]\nname = "remote"\nurl = "http://127.0.0.1:9"\n')
    app = build_app(mode="interactive", theme=None, read_only=False, config=load_config(path), watch_terminal=False)
    assert isinstance(app.launcher, SimulatedLauncher)
    view = app.triage_factory(None, "remote")
    assert isinstance(view, PlaybookTriage) and view.data_dir is None and view.root == "fleet"


@pytest.mark.parametrize("backend", BACKENDS[:1])
def test_cancel_during_a_step_stops_the_run_at_the_next_step(tmp_path: Path, backend: str) -> None:
    data = corrupt_node(tmp_path, backend)
    launcher = PlaybookLauncher({"orders": data})
    session = launcher.start(recommendation_for(launcher.library, "data-recovery"), "orders")

    async def main() -> list[RunEvent]:
        seen: list[RunEvent] = []
        async for event in session.events():
            seen.append(event)
            if isinstance(event, StepStarted):
                session.cancel()
            if isinstance(event, NeedsConfirmation):  # never reached: the run stops before
                session.confirm(event.step_id, "orders")
        return seen

    events = asyncio.run(main())
    last = events[-1]
    assert isinstance(last, RunFinished) and last.status == "cancelled"
    assert not any(isinstance(event, NeedsConfirmation) for event in events)
    assert any(isinstance(event, StepFinished) and event.status == "cancelled" for event in events)
    assert not verify_data_dir(data).ok  # the repair never ran
