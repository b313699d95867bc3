"""The request gate drains before the engine closes; the agent's registry drains, reopens or redirects per step."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from engines.node.drain import RequestGate
from playbooks.actions import REGISTRY, ActionContext
from playbooks.agent.steps import AgentRegistry, needs_data_dir, talks_to_nodes


def test_close_waits_for_the_requests_in_flight_and_refuses_new_ones() -> None:
    gate = RequestGate()
    assert gate.enter() is None
    closed: list[int] = []
    closer = threading.Thread(target=lambda: closed.append(gate.close("repair", timeout=10)))
    closer.start()
    time.sleep(0.2)
    assert closer.is_alive(), "close must wait for the request in flight"
    assert gate.enter() == "repair", "a new request is refused while draining"
    gate.leave()
    closer.join(timeout=5)
    assert closed == [0]
    gate.open()
    assert gate.enter() is None
    gate.leave()


def test_close_gives_up_after_its_timeout_and_says_how_many_remain() -> None:
    gate = RequestGate()
    assert gate.enter() is None
    clock = time.monotonic()
    assert gate.close("repair", timeout=0.3) == 1
    assert 0.25 <= time.monotonic() - clock < 3


def test_which_steps_need_the_data_dir() -> None:
    needs = {entry.name for entry in REGISTRY if needs_data_dir(entry)}
    assert {
        "engine.repair",
        "engine.recover",
        "engine.safety_copy",
        "wal.truncate",
        "backup.restore",
        "config.repair",
        "engine.flush",
    } <= needs
    assert not needs & {"engine.verify", "wal.validate", "backup.verify", "node.promote", "node.status", "manual.note"}
    assert all(talks_to_nodes(REGISTRY.get(name)) for name in ("node.stop", "node.start", "node.status"))


class _Node:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.calls: list[str] = []
        self.is_serving = True

    def release(self, why: str) -> None:
        self.calls.append("release")
        self.is_serving = False

    def reopen(self, why: str) -> None:
        self.calls.append("reopen")
        self.is_serving = True

    def serving(self) -> bool:
        return self.is_serving

    def hot_backup(self, repo: str | None, incremental: bool) -> dict[str, Any]:
        self.calls.append(f"hot_backup {repo}")
        return {"backup_id": "b1", "type": "full", "lsn_start": 1, "lsn_end": 2, "path": "/r/b1"}


@pytest.fixture
def registry(tmp_path: Path) -> tuple[AgentRegistry, _Node, ActionContext]:
    node = _Node(tmp_path / "orders")
    node.data_dir.mkdir()
    cancelled = threading.Event()
    context = ActionContext(data_dir=node.data_dir, run_id="r1", step="s")
    return AgentRegistry(cancelled, node), node, context


def test_node_stop_and_start_of_its_own_node_drain_and_reopen(registry: Any) -> None:
    agent, node, context = registry
    stopped = agent.invoke("node.stop", context, {})
    assert stopped.ok and stopped.data["how"] == "drained by its own agent" and node.calls == ["release"]
    started = agent.invoke("node.start", context, {})
    assert started.ok and node.calls == ["release", "reopen"]
    agent.invoke("node.restart", context, {})
    assert node.calls[-2:] == ["release", "reopen"]


def test_backup_of_a_serving_node_is_its_hot_backup(registry: Any) -> None:
    agent, node, context = registry
    result = agent.invoke("backup.create", context, {"repo": "/r"})
    assert result.ok and node.calls == ["hot_backup /r"]


def test_a_cancelled_run_refuses_its_next_action(registry: Any) -> None:
    from engines.errors import SafetyRefusal

    agent, node, context = registry
    agent.cancelled.set()
    with pytest.raises(SafetyRefusal):
        agent.invoke("engine.verify", context, {})
    assert node.calls == []
