"""A run on the agent outlives its client, and the node coordinates with itself around it.

* while a step holds the data dir the node answers 503 "recovering" (health says so), and serves
  again, every key intact, once the run is over;
* the responder's CLI killed mid-run: the run goes on on the node, ``playbook resume --node`` follows
  it to its end;
* the node itself killed mid-run (``kill -9``): after its restart the journal on its host resumes
  the run at the step it was in;
* ``playbook cancel`` stops a run at the next step boundary (resumable).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import httpx
import pytest
from agent_kit import AgentNode, cli, fill, missing_keys, spawn_cli, wait_until, write_config

HOLD = """id = "t-hold"
title = "flush (the node drains), then hold the data dir (tests)"
severity = "P2"
target_rto_seconds = 60
backends = ["lsm", "cow", "rocksdb"]
guide = "tests"

[[steps]]
id = "flush"
action = "engine.flush"

[[steps]]
id = "hold"
action = "test.sleep"
args = {{ seconds = {seconds}, resumed_seconds = 0.2, marker = "{marker}" }}

[[steps]]
id = "verify"
action = "engine.verify"
"""


@pytest.fixture
def hold(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The node's environment that knows the t-hold playbook, and the marker its slow step writes."""
    folder = tmp_path / "library"
    folder.mkdir()
    marker = tmp_path / "marker.txt"
    (folder / "t-hold.toml").write_text(HOLD.format(seconds=30, marker=marker), encoding="utf-8")
    return {"DRCONSOLE_PLAYBOOK_PATH": str(folder), "DRCONSOLE_TEST_ACTIONS": "1"}, marker


def _holding(marker: Path) -> bool:
    return marker.exists() and "hold started" in marker.read_text()


def _live_run(node: AgentNode) -> str:
    runs = node.call("GET", "/agent/runs", token=True)
    assert runs is not None and runs.status_code == 200
    live = [row for row in runs.json()["runs"] if row.get("live")]
    return str(live[-1]["run_id"]) if live else ""


def test_drained_while_a_step_holds_the_data_dir_then_serving(
    tmp_path: Path, agent_node, token_file: Path, hold: tuple[dict[str, str], Path]
) -> None:
    env, marker = hold
    short = tmp_path / "short"
    short.mkdir()
    (short / "t-hold.toml").write_text(HOLD.format(seconds=3, marker=marker), encoding="utf-8")
    node: AgentNode = agent_node("orders", env={**env, "DRCONSOLE_PLAYBOOK_PATH": str(short)})
    ledger = fill(node, 100)
    config = write_config(tmp_path / "drconsole.toml", "orders", node.url, token_file)
    child = spawn_cli(
        tmp_path / "laptop", "--config", config, "playbook", "run", "t-hold", "--node", "orders", "--yes", "--json"
    )
    try:
        wait_until(lambda: _holding(marker), timeout=30)
        kv = httpx.get(f"{node.url}/kv/key000001", timeout=5)
        assert kv.status_code == 503 and kv.json()["status"] == "recovering"
        health = httpx.get(f"{node.url}/health", timeout=5)
        assert health.status_code == 503 and health.json()["status"] == "recovering"
        assert httpx.get(f"{node.url}/ready", timeout=5).status_code == 503
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    result = json.loads(out)
    assert result["status"] == "succeeded" and result["verified_ready_at"] >= os.path.getmtime(marker)
    assert [step["status"] for step in result["steps"]] == ["succeeded", "succeeded", "succeeded"]
    assert missing_keys(node.url, ledger) == []
    assert httpx.get(f"{node.url}/health", timeout=5).json()["status"] == "healthy"


def test_client_killed_mid_run_then_resume_follows_it_to_the_end(
    tmp_path: Path, agent_node, token_file: Path, hold: tuple[dict[str, str], Path]
) -> None:
    env, marker = hold
    short = tmp_path / "short"
    short.mkdir()
    (short / "t-hold.toml").write_text(HOLD.format(seconds=4, marker=marker), encoding="utf-8")
    node: AgentNode = agent_node("orders", env={**env, "DRCONSOLE_PLAYBOOK_PATH": str(short)})
    ledger = fill(node, 50)
    config = write_config(tmp_path / "drconsole.toml", "orders", node.url, token_file)
    laptop = tmp_path / "laptop"
    child = spawn_cli(laptop, "--config", config, "playbook", "run", "t-hold", "--node", "orders", "--yes", "--json")
    wait_until(lambda: _holding(marker), timeout=30)
    os.kill(child.pid, signal.SIGKILL)  # the SSH session drops
    child.wait(timeout=10)
    run_id = _live_run(node)
    assert run_id, "the run must go on on the node"

    resumed = cli(laptop, "--config", config, "playbook", "resume", run_id, "--node", "orders", "--json")
    assert resumed.code == 0, resumed.err
    result = resumed.json()
    assert result["run_id"] == run_id and result["status"] == "succeeded"
    assert result.get("verified_ready_at")
    assert marker.read_text().count("hold started") == 1, "attaching must not run the step again"
    assert missing_keys(node.url, ledger) == []
    listed = cli(laptop, "--config", config, "playbook", "runs", "--node", "orders", "--json").json()["runs"]
    assert [row["status"] for row in listed if row["run_id"] == run_id] == ["succeeded"]


def test_node_killed_mid_run_resumes_from_its_journal(
    tmp_path: Path, agent_node, token_file: Path, hold: tuple[dict[str, str], Path]
) -> None:
    env, marker = hold
    node: AgentNode = agent_node("orders", env=env)
    ledger = fill(node, 80)
    config = write_config(tmp_path / "drconsole.toml", "orders", node.url, token_file)
    laptop = tmp_path / "laptop"
    child = spawn_cli(laptop, "--config", config, "playbook", "run", "t-hold", "--node", "orders", "--yes", "--json")
    restarted = None
    try:
        wait_until(lambda: _holding(marker), timeout=30)
        run_id = _live_run(node)
        node.kill(signal.SIGKILL)
        # systemd's Restart=on-failure: the node is back while the CLI still retries its stream
        restarted = AgentNode(node.data_dir, node.state, token_file=token_file, port=node.port, env=env).start()
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 1, err
    failure = json.loads(out)
    assert "was cut off" in failure["error"] and f"playbook resume {run_id}" in failure["hint"]
    try:
        # The run was cut off while it held the data dir: the node does not serve it half-recovered.
        health = restarted.call("GET", "/health")
        assert health is not None and health.status_code == 503 and health.json()["status"] == "recovering"
        assert run_id in health.json()["reason"]
        assert restarted.call("GET", "/kv/key000001").status_code == 503
        resumed = cli(laptop, "--config", config, "playbook", "resume", run_id, "--node", "orders", "--json")
        assert resumed.code == 0, resumed.err
        result = resumed.json()
        assert result["run_id"] == run_id and result["status"] == "succeeded"
        assert "hold started (resumed)" in marker.read_text()
        assert missing_keys(restarted.url, ledger) == []
        assert restarted.call("GET", "/health").json()["status"] == "healthy"
    finally:
        if restarted is not None:
            restarted.stop()


def test_cancel_stops_the_run_at_the_next_step(
    tmp_path: Path, agent_node, token_file: Path, hold: tuple[dict[str, str], Path]
) -> None:
    env, marker = hold
    short = tmp_path / "short"
    short.mkdir()
    (short / "t-hold.toml").write_text(HOLD.format(seconds=3, marker=marker), encoding="utf-8")
    node: AgentNode = agent_node("orders", env={**env, "DRCONSOLE_PLAYBOOK_PATH": str(short)})
    ledger = fill(node, 30)
    config = write_config(tmp_path / "drconsole.toml", "orders", node.url, token_file)
    laptop = tmp_path / "laptop"
    child = spawn_cli(laptop, "--config", config, "playbook", "run", "t-hold", "--node", "orders", "--yes", "--json")
    try:
        wait_until(lambda: _holding(marker), timeout=30)
        run_id = _live_run(node)
        cancelled = cli(laptop, "--config", config, "playbook", "cancel", run_id, "--node", "orders", "--json")
        assert cancelled.code == 0 and cancelled.json()["cancelled"] is True
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 4, err
    result = json.loads(out)
    assert result["status"] == "refused" and "cancelled" in result["message"]
    assert [step["id"] for step in result["steps"] if step["status"] == "succeeded"] == ["flush", "hold"]
    # The node came back anyway: a cancelled run does not leave it drained.
    assert missing_keys(node.url, ledger) == []
    assert node.call("GET", "/health").json()["status"] == "healthy"


def test_cancel_of_a_cut_off_run_reopens_the_node(
    tmp_path: Path, agent_node, token_file: Path, hold: tuple[dict[str, str], Path]
) -> None:
    env, marker = hold
    node: AgentNode = agent_node("orders", env=env)
    ledger = fill(node, 40)
    config = write_config(tmp_path / "drconsole.toml", "orders", node.url, token_file)
    laptop = tmp_path / "laptop"
    child = spawn_cli(laptop, "--config", config, "playbook", "run", "t-hold", "--node", "orders", "--yes", "--json")
    restarted = None
    try:
        wait_until(lambda: _holding(marker), timeout=30)
        run_id = _live_run(node)
        node.kill(signal.SIGKILL)
        child.kill()
        restarted = AgentNode(node.data_dir, node.state, token_file=token_file, port=node.port, env=env).start()
        assert restarted.call("GET", "/health").json()["status"] == "recovering"
        cancelled = cli(laptop, "--config", config, "playbook", "cancel", run_id, "--node", "orders", "--json")
        assert cancelled.code == 0 and cancelled.json()["reopened"] is True
        assert restarted.call("GET", "/health").json()["status"] == "healthy"
        assert missing_keys(restarted.url, ledger) == []
    finally:
        child.wait(timeout=10)
        if restarted is not None:
            restarted.stop()
