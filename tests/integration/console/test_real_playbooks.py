"""The Run screen on the real runner: a real data dir with a real fault, recovered end to end.

A data dir is corrupted with a ``faults`` injector; the console opened on a config naming
it triages it (the probes' answers accepted), shows the dry-run plan, starts the recommended
playbook, the responder types the node name at the destructive step, and afterwards: the data dir
verifies, the step rows and the run's status are the runner's ``RunResult``, the progress bar went
through the run, the log pane holds every log line of the journal, and the run is "succeeded"
because the node was verified, which resolved the incident. Declining, cancelling and read-only
change nothing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from console_testkit import fixture_app, screen_text, tree_digest
from support import available_backends
from textual.widgets import Input

from console.adapters.run_adapter import RunEnded, RunLauncher, RunSession
from console.adapters.triage_adapter import PlaybookTriage
from console.config import load_config
from console.tui.launch import build_app
from console.tui.screens.confirm import ConfirmScreen
from console.tui.widgets.run_log import RunLog
from console.tui.widgets.run_progress import RunProgress
from engines import create_engine, open_engine
from engines.checks import verify_data_dir
from faults import inject
from fleet import NodeSpec
from playbooks.events import RunEvent
from playbooks.journal import read_journal

FAULT = {"lsm": "sstable-corrupt", "cow": "page-corrupt", "rocksdb": "sst-corrupt"}
BACKENDS = [backend for backend in available_backends() if backend in ("lsm", "cow")]
pytestmark = pytest.mark.skipif(not BACKENDS, reason="no lsm or cow backend built yet")


def corrupt_node(tmp_path: Path, backend: str, name: str = "orders", keys: int = 400) -> Path:
    data = tmp_path / "nodes" / name
    with create_engine(data, backend=backend) as engine:
        for index in range(keys):
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


async def confirm_with(pilot, app, name: str) -> None:  # type: ignore[no-untyped-def]
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
    app.screen.query_one(Input).value = name
    await pilot.press("enter")


@pytest.mark.parametrize("backend", BACKENDS)
def test_recovery_of_a_corrupt_data_dir_end_to_end_on_the_run_screen(tmp_path: Path, backend: str) -> None:
    data = corrupt_node(tmp_path, backend)
    config = load_config(write_config(tmp_path, backend))
    app = build_app(mode="interactive", theme=None, read_only=False, config=config, watch_terminal=False)
    assert isinstance(app.launcher, RunLauncher)
    fractions: list[float] = []
    bar_totals: list[float] = []
    logged: list[int] = []

    async def main() -> tuple[str, str, str]:
        async with app.run_test(size=(140, 45)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None and app.selected_node == "orders")
            await pilot.press("2")  # Triage of the selected node
            view = app.triage("orders")
            assert isinstance(view, PlaybookTriage)
            while not view.current().is_leaf:
                probe = view.probe(view.current().id)
                await pilot.press("a" if probe.answer is not None else "n")
            recommended = [r.playbook_id for r in view.recommended()]
            assert recommended[0] == "data-recovery"
            await pilot.press("enter")  # the first recommendation, into Run
            await wait_for(pilot, lambda: app.run_state is not None and app.run_state.plan is not None)
            await pilot.press("p")  # the dry-run plan, into the log
            await pilot.pause(0.1)
            plan_text = screen_text(app)

            def sample() -> None:
                fractions.append(app.run_state.fraction())
                run_screen = app.get_screen("run")
                bar_totals.append(run_screen.query_one(RunProgress).fraction)
                logged.append(run_screen.query_one(RunLog)._written)

            app.watch(app, "run_revision", sample, init=False)
            await pilot.press("s")
            await confirm_with(pilot, app, "not-orders")  # a wrong name is refused: the dialog stays
            assert isinstance(app.screen, ConfirmScreen)
            app.screen.query_one(Input).value = "orders"
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.run_state.done)
            # Nobody serves this data dir: the runner resolved the incident once its checks passed and it opened.
            await wait_for(pilot, lambda: app.incident is not None and app.incident.status == "resolved")
            await pilot.pause(0.2)
            run_text = screen_text(app)
            await pilot.press("4")  # Timeline
            await pilot.pause(0.2)
            return plan_text, run_text, screen_text(app)

    plan_text, run_text, timeline_text = asyncio.run(main())
    state = app.run_state
    result = state.result
    assert result is not None and result.status == "succeeded", (state.error, [e.text for e in state.log[-8:]])
    # What the screen says is what the runner returned: every row, and the run's status.
    assert {step.id: step.status for step in result.steps} == {
        step_id: status for step_id, status in state.statuses.items() if step_id in {s.id for s in result.steps}
    }
    assert not any(status in ("failed", "refused", "running", "waiting") for status in state.statuses.values())
    assert state.statuses["recover-" + backend + "/check"] == "problem"  # found the damage: not a failed step
    assert state.verified is not None and state.status == "succeeded"
    assert "✔ SUCCEEDED" in run_text and "verified: node ready at" in run_text and "UTC" in run_text
    assert any("(dry run: nothing was changed)" in entry.text for entry in state.log)
    assert "destructive: asks for the node name" in plan_text
    # The bar moved with the run (values strictly between 0 and 1 on the way) and ended full.
    assert any(0.0 < fraction < 1.0 for fraction in bar_totals), bar_totals
    assert sorted(fractions) == fractions or fractions[-1] == 1.0
    assert bar_totals[-1] == 1.0
    # Every log event of the run (the journal's log records) is in the log pane, and it filled as it went.
    journal = read_journal(Path(result.journal or ""))
    pane = [entry.text for entry in state.log if entry.source == "log"]
    assert [record["message"] for record in journal.logs] == pane
    assert len(set(logged)) > 3
    # The data: verified by the engine, every key readable, the damaged file in quarantine (not deleted).
    assert verify_data_dir(data).ok
    assert list((data / ".quarantine").rglob("*"))
    # The incident resolved when the node was verified (its checks passed and the data dir opened),
    # written by the runner itself; not when the last step ended.
    incident = app.incident
    assert incident is not None and incident.status == "resolved" and incident.severity == "P0"
    finished = next(event for event in incident.events if event.kind == "run_finished")
    assert finished.data["checks_passed"] and incident.resolved_at >= finished.time
    texts = [event.message for event in incident.events]
    assert any("confirmed by typing the node name" in text for text in texts)
    assert "playbook data-recovery succeeded" in timeline_text and "service restored" in timeline_text


@pytest.mark.parametrize("backend", BACKENDS[:1])
def test_a_declined_step_changes_nothing_and_the_run_is_refused(tmp_path: Path, backend: str) -> None:
    data = corrupt_node(tmp_path, backend)
    config = load_config(write_config(tmp_path, backend))
    app = build_app(mode="interactive", theme=None, read_only=False, config=config, watch_terminal=False)

    async def main() -> str:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            app.choose("data-recovery", "orders")
            await pilot.press("s")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("escape")  # decline
            await wait_for(pilot, lambda: app.run_state.done)
            await pilot.pause(0.1)
            return screen_text(app)

    text = asyncio.run(main())
    state = app.run_state
    assert state.result is not None and state.result.status == "refused" and state.status == "refused"
    assert state.statuses["recover-" + backend + "/repair"] == "refused"
    assert "✖ REFUSED" in text and "asks again for the node name" in text
    assert app.incident is not None and app.incident.resolved_at is None
    assert not verify_data_dir(data).ok  # nothing destructive ran


async def drive(session: RunSession, on_event) -> list[RunEvent | RunEnded]:  # type: ignore[no-untyped-def]
    seen: list[RunEvent | RunEnded] = []
    async for item in session.events():
        seen.append(item)
        if isinstance(item, RunEvent):
            on_event(item)
    return seen


@pytest.mark.parametrize("backend", BACKENDS[:1])
def test_cancel_while_waiting_for_confirmation_changes_nothing(tmp_path: Path, backend: str) -> None:
    data = corrupt_node(tmp_path, backend)
    launcher = RunLauncher(load_config(write_config(tmp_path, backend)).nodes)
    session = launcher.start("data-recovery", "orders")

    def on_event(event: RunEvent) -> None:
        if event.kind == "needs_confirmation":
            session.cancel()
            assert not session.confirm(event.step_id or "", "orders")

    events = asyncio.run(drive(session, on_event))
    ended = events[-1]
    assert isinstance(ended, RunEnded) and ended.result is not None and ended.result.status == "refused"
    assert ended.verified is None
    assert not verify_data_dir(data).ok


@pytest.mark.parametrize("backend", BACKENDS[:1])
def test_cancel_during_a_step_stops_the_run_before_the_next(tmp_path: Path, backend: str) -> None:
    data = corrupt_node(tmp_path, backend)
    launcher = RunLauncher(load_config(write_config(tmp_path, backend)).nodes)
    session = launcher.start("data-recovery", "orders")

    def on_event(event: RunEvent) -> None:
        if event.kind == "step_started":
            session.cancel()
        if event.kind == "needs_confirmation":  # never reached: the run stops before
            session.confirm(event.step_id or "", "orders")

    events = asyncio.run(drive(session, on_event))
    ended = events[-1]
    assert isinstance(ended, RunEnded) and ended.result is not None and ended.result.status == "refused"
    assert not any(isinstance(event, RunEvent) and event.kind == "needs_confirmation" for event in events)
    assert "cancelled by the responder" in ended.result.message
    assert not verify_data_dir(data).ok  # the repair never ran


@pytest.mark.parametrize("backend", BACKENDS[:1])
def test_read_only_no_run_and_the_runner_refuses_every_write(tmp_path: Path, backend: str) -> None:
    data = corrupt_node(tmp_path, backend)
    before = tree_digest(data)
    config = load_config(write_config(tmp_path, backend))
    app = build_app(mode="interactive", theme=None, read_only=True, config=config, watch_terminal=False)
    assert app.launcher is None  # a read-only console has no launcher at all

    async def main() -> None:
        async with app.run_test(size=(140, 45)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None and app.selected_node == "orders")
            await pilot.press("3", "s", "r", "p")
            app.action_start_run()
            app.action_resume_run()
            await pilot.pause(0.2)

    asyncio.run(main())
    assert app.run_session is None
    # And the launcher itself, if one were used read-only: the runner's gate refuses every writing action.
    launcher = RunLauncher(config.nodes, read_only=True)
    session = launcher.start("data-recovery", "orders")

    def on_event(event: RunEvent) -> None:
        if event.kind == "needs_confirmation":
            session.confirm(event.step_id or "", "orders")

    events = asyncio.run(drive(session, on_event))
    ended = events[-1]
    assert isinstance(ended, RunEnded) and ended.result is not None and ended.result.status == "refused"
    assert tree_digest(data) == before


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        (NodeSpec(name="ledger", url="http://127.0.0.1:9"), "no plan: node http://127.0.0.1:9 is unreachable"),
        (NodeSpec(name="elsewhere", url="http://127.0.0.1:9"), "ledger has no [[node]] in the config"),
    ],
    ids=["url-only", "not-configured"],
)
def test_a_node_the_console_cannot_reach_says_so_and_runs_nothing(tmp_path: Path, spec: NodeSpec, why: str) -> None:
    """ledger of the recorded fleet (as Prometheus would list it), with no way for the console to its data."""
    app = fixture_app(launcher=RunLauncher([spec]))

    async def main() -> str:
        async with app.run_test(size=(120, 40)) as pilot:
            app.choose("data-recovery", "ledger")
            await pilot.pause(0.1)
            await pilot.press("s", "r")
            await pilot.pause(0.2)
            return screen_text(app)

    text = asyncio.run(main())
    assert app.run_state is not None and app.run_state.status == "cannot" and app.run_session is None
    assert "✖ CANNOT ACT" in text and why in " ".join(text.split())
    assert not list(tmp_path.rglob("*.jsonl"))


@pytest.mark.parametrize("backend", BACKENDS[:1])
def test_resume_says_exactly_why_when_there_is_nothing_to_resume(tmp_path: Path, backend: str) -> None:
    data = tmp_path / "nodes" / "orders"
    with create_engine(data, backend=backend) as engine:
        engine.put(b"k", b"v")
    launcher = RunLauncher(load_config(write_config(tmp_path, backend)).nodes)
    with pytest.raises(Exception, match="no run of orders in the journal folder"):
        launcher.resume("orders")
    session = launcher.start("post-recovery-validation", "orders")
    events = asyncio.run(drive(session, lambda event: None))
    ended = events[-1]
    assert isinstance(ended, RunEnded) and ended.result is not None and ended.result.status == "succeeded"
    with pytest.raises(Exception, match=r"the last run of orders \(post-recovery-validation .*\) succeeded"):
        launcher.resume("orders")
    with open_engine(data, mode="ro") as engine:
        assert engine.get(b"k") == b"v"
