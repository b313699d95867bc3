"""``RemoteRunner`` is the local ``Runner`` over the network: same events, same confirmations, same results.

A node (with its agent) is served in a thread of this process; the same playbook runs on a copy of
the same damaged data dir through the local runner, and the two event streams are compared.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from engines import create_engine
from engines.node.config import NodeConfig
from engines.node.server import ServerThread
from faults import inject
from fleet import NodeSpec
from playbooks.agent import AgentClient, RemoteRunner, runner_for
from playbooks.agent.protocol import StartRequest
from playbooks.agent.select import LocalRunner
from playbooks.agent.service import agent_extension
from playbooks.events import RunEvent
from playbooks.runner import RunOptions
from playbooks.state import StateDir

TOKEN = "in-process-token"


def _damaged(path: Path, count: int = 300) -> Path:
    with create_engine(path, backend="lsm") as engine:
        engine.write_batch([(b"key%06d" % i, b"value-%06d" % i * 8) for i in range(count)])
        engine.flush()
    inject("sstable-corrupt", path, seed=5)
    return path


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("DRCONSOLE_STATE_DIR", str(tmp_path / "responder-state"))
    data = _damaged(tmp_path / "orders")
    shutil.copytree(data, tmp_path / "twin")
    config = NodeConfig(data_dir=data, port=0, name="orders", token=TOKEN, scrub_interval=0)
    config.port = _free_port()
    thread = ServerThread(config, extensions=[agent_extension(state=StateDir(tmp_path / "node-state"))]).start()
    try:
        yield thread
    finally:
        thread.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _steps(events: list[RunEvent]) -> list[tuple[str, str | None, str | None]]:
    return [
        (event.kind, event.step_id, event.status)
        for event in events
        if event.kind in ("run_started", "step_started", "step_finished", "needs_confirmation", "run_finished")
    ]


def test_same_events_and_confirmations_as_the_local_runner(tmp_path: Path, served: ServerThread) -> None:
    remote_events: list[RunEvent] = []
    asked: list[tuple[str, str, str | None]] = []

    def confirm(planned: Any, target: str) -> bool:
        asked.append((planned.id, target, planned.step.action))
        return True

    spec = NodeSpec(name="orders", url=served.url)
    runner = runner_for(spec, token=TOKEN, listeners=[remote_events.append])
    assert isinstance(runner, RemoteRunner)
    remote = runner.run("data-recovery", None, RunOptions(confirm=confirm))
    assert remote.status == "succeeded" and remote.exit_code == 0
    assert remote.verified_ready_at is not None and remote.node_url == served.url
    assert asked == [("recover-lsm/repair", "orders", "engine.repair")]

    local_events: list[RunEvent] = []
    local = runner_for(
        NodeSpec(name="orders", data_dir=tmp_path / "twin"),
        listeners=[local_events.append],
        state=StateDir(tmp_path / "local-state"),
    )
    assert isinstance(local, LocalRunner)
    twin = local.run("data-recovery", None, RunOptions(confirm=lambda planned, target: True, node="orders"))
    assert twin.status == "succeeded"
    assert _steps(remote_events) == _steps(local_events)
    assert [step.status for step in remote.steps] == [step.status for step in twin.steps]
    assert all(isinstance(event, RunEvent) for event in remote_events)
    assert remote_events[-1].kind == "run_finished" and remote_events[-1].data["verified_ready_at"]
    drain = [event.message for event in remote_events if event.kind == "log" and "drain" in event.message]
    assert drain, "the node says when it drains"


def test_declined_confirmation_refuses_and_the_node_serves_again(served: ServerThread) -> None:
    events: list[RunEvent] = []
    runner = RemoteRunner(served.url, token=TOKEN, node="orders", listeners=[events.append])
    result = runner.run("data-recovery", None, RunOptions(confirm=lambda planned, target: False))
    assert result.status == "refused" and result.exit_code == 4
    statuses = {step.id: step.status for step in result.steps}
    assert statuses["recover-lsm/repair"] == "refused"
    assert served.node.released is False  # reopened: a refused run does not leave the node drained
    assert [event.kind for event in events].count("needs_confirmation") == 1


def test_a_confirmation_must_type_the_node_name(served: ServerThread) -> None:
    with AgentClient(served.url, token=TOKEN) as client:
        started = client.start(StartRequest(playbook="data-recovery", node="orders", interactive=True))
        run_id = started["run_id"]
        deadline = time.monotonic() + 30
        while not client.run_info(run_id).get("pending_confirmation"):
            assert time.monotonic() < deadline, "no step asked for a confirmation"
            time.sleep(0.05)
        pending = client.run_info(run_id)["pending_confirmation"]
        assert pending["step"] == "recover-lsm/repair" and pending["target"] == "orders"
        wrong = client.confirm(run_id, "recover-lsm/repair", "orders-b")
        assert wrong["accepted"] is False and "orders" in wrong["reason"]
        assert client.run_info(run_id)["pending_confirmation"]["step"] == "recover-lsm/repair"
        right = client.confirm(run_id, "recover-lsm/repair", "orders")
        assert right["accepted"] is True
        while client.run_info(run_id)["live"]:
            assert time.monotonic() < deadline + 60
            time.sleep(0.05)
        assert client.run_info(run_id)["result"]["status"] == "succeeded"


def test_unknown_playbook_and_unknown_run_are_bad_input(served: ServerThread) -> None:
    from engines.errors import EngineError

    runner = RemoteRunner(served.url, token=TOKEN, node="orders")
    with pytest.raises(EngineError) as unknown:
        runner.run("no-such-playbook", None, RunOptions(assume_yes=True))
    assert unknown.value.exit_code == 2
    with pytest.raises(EngineError) as missing:
        runner.resume("20260101-000000-000-beef", RunOptions())
    assert missing.value.exit_code == 2


def test_a_remote_run_places_each_step_in_the_incident_when_it_ended_on_the_node(served: ServerThread) -> None:
    """The responder's incident learns of a run on a node's agent when its result comes back; its
    step events still carry the times the steps ended there (the report's timeline, the RTO story),
    not one shared arrival time after the last step."""
    from playbooks.incident_store import IncidentStore

    def slow_confirm(planned: Any, target: str) -> bool:
        time.sleep(1.0)  # the responder reads the prompt: the steps before it ended a second earlier
        return True

    runner = runner_for(NodeSpec(name="orders", url=served.url), token=TOKEN)
    result = runner.run("data-recovery", None, RunOptions(confirm=slow_confirm))
    assert result.status == "succeeded"
    ended = {step.id: step.finished_at for step in result.steps if step.finished_at is not None}
    assert "safety-copy" in ended and "recover-lsm/repair" in ended
    incident = next(found for found in IncidentStore().list() if found.target == "orders")
    steps = {event.data["step"]: event.time for event in incident.events if event.kind == "step"}
    finished = next(event.time for event in incident.events if event.kind == "run_finished")
    assert steps["safety-copy"] == pytest.approx(ended["safety-copy"], abs=0.01)
    assert steps["recover-lsm/repair"] == pytest.approx(ended["recover-lsm/repair"], abs=0.01)
    assert steps["safety-copy"] <= finished - 0.9  # before the confirmation's second, not at the end
    assert list(steps.values()) == sorted(steps.values())
