"""End to end: a serving lsm node with a corrupt SSTable, recovered through its agent from the CLI.

The responder's config knows the node only by ``url`` + ``token_file``; the node runs the
playbook on its own data dir, drains and reopens itself, and the run ends when it answers /ready.
"""

from __future__ import annotations

from pathlib import Path

from agent_kit import (
    AgentNode,
    audit_entries,
    cli,
    fill,
    journal_records,
    missing_keys,
    write_config,
)

from faults import inject


def _corrupt_while_serving(node: AgentNode) -> tuple[Path, bytes]:
    """Flip bytes in the node's SSTable as it serves; the damaged file and its bytes after the flip."""
    report = inject("sstable-corrupt", node.data_dir, seed=7)
    damaged = (
        node.data_dir / report.changes[0].file if report.changes else next((node.data_dir / "sstables").glob("*.sst"))
    )
    return damaged, damaged.read_bytes()


def test_corrupt_sstable_recovered_through_the_agent(tmp_path: Path, agent_node, token_file: Path) -> None:
    node: AgentNode = agent_node("orders")
    ledger = fill(node, 400)
    damaged, damaged_bytes = _corrupt_while_serving(node)
    assert missing_keys(node.url, ledger), "the flipped bytes must hurt some reads"
    config = write_config(tmp_path / "drconsole.toml", "orders", node.url, token_file)
    laptop = tmp_path / "laptop-state"

    triage = cli(laptop, "--config", config, "triage", "--node", "orders", "--json")
    assert triage.code == 1, triage.err  # a fault found: the node reports its corruption over HTTP
    assert triage.json()["target"] == "orders" and triage.json()["recommended"][0] == "data-recovery"

    run = cli(laptop, "--config", config, "playbook", "run", "data-recovery", "--node", "orders", "--yes", "--json")
    assert run.code == 0, run.err + run.out
    result = run.json()
    assert result["status"] == "succeeded"
    assert result["node_url"] == node.url
    assert result["data_dir"] == str(node.data_dir)
    assert isinstance(result.get("verified_ready_at"), float)
    assert {step["id"]: step["status"] for step in result["steps"]}["recover-lsm/repair"] == "succeeded"

    # Serving again, every key with its value, over HTTP.
    assert missing_keys(node.url, ledger) == []
    assert node.call("GET", "/health").json()["status"] == "healthy"
    assert node.call("GET", "/ready").status_code == 200
    # Nothing deleted: the damaged table sits in quarantine byte for byte.
    quarantined = [
        path for path in (node.data_dir / ".quarantine").rglob(damaged.name) if path.read_bytes() == damaged_bytes
    ]
    assert quarantined, "the damaged SSTable must be in quarantine, unchanged"

    # The journal is on the node's host; the responder's side has none, only its audit and incident.
    run_id = result["run_id"]
    records = journal_records(node.state, run_id)
    kinds = [record["type"] for record in records]
    assert kinds[0] == "run_started" and "agent_released" in kinds and "agent_reopened" in kinds
    verified = [record for record in records if record["type"] == "agent_verified"]
    assert verified and verified[-1]["ready"] is True
    assert not (laptop / "runs" / f"{run_id}.jsonl").exists()
    who = records[0]["who"]
    assert who["via"].startswith("agent request from 127.0.0.1")
    node_audit = [entry for entry in audit_entries(node.state) if entry.get("run_id") == run_id]
    assert any(entry["action"] == "engine.repair" and entry["outcome"] == "succeeded" for entry in node_audit)
    assert all(entry["who"].get("via") for entry in node_audit)
    laptop_audit = [entry for entry in audit_entries(laptop) if entry.get("run_id") == run_id]
    assert [entry["outcome"] for entry in laptop_audit if entry["action"] == "agent.run"] == ["started", "succeeded"]
    assert laptop_audit[0]["who"]["user"] == node_audit[0]["who"]["user"]

    # The incident on the responder's side resolved at the moment the node answered /ready.
    incidents = cli(laptop, "--config", config, "incident", "list", "--json").json()["incidents"]
    mine = [incident for incident in incidents if incident["target"] == "orders"]
    assert mine and mine[-1]["status"] == "resolved"


def test_refused_without_confirmation_changes_nothing(tmp_path: Path, agent_node, token_file: Path) -> None:
    node: AgentNode = agent_node("orders")
    fill(node, 50)
    damaged, damaged_bytes = _corrupt_while_serving(node)
    before = sorted(str(path.relative_to(node.data_dir)) for path in node.data_dir.rglob("*"))
    config = write_config(tmp_path / "drconsole.toml", "orders", node.url, token_file)
    run = cli(tmp_path / "laptop", "--config", config, "playbook", "run", "data-recovery", "--node", "orders", "--json")
    assert run.code == 4, run.err
    assert run.json()["status"] == "refused"
    assert sorted(str(path.relative_to(node.data_dir)) for path in node.data_dir.rglob("*")) == before
    assert damaged.read_bytes() == damaged_bytes
    assert node.call("GET", "/health").json()["status"] != "recovering"


def test_dry_run_plans_on_the_node_and_changes_nothing(tmp_path: Path, agent_node, token_file: Path) -> None:
    node: AgentNode = agent_node("orders")
    fill(node, 20)
    config = write_config(tmp_path / "drconsole.toml", "orders", node.url, token_file)
    run = cli(
        tmp_path / "laptop",
        "--config",
        config,
        "playbook",
        "run",
        "data-recovery",
        "--node",
        "orders",
        "--dry-run",
        "--json",
    )
    assert run.code == 0, run.err
    plan = run.json()
    assert plan["dry_run"] is True and plan["data_dir"] == str(node.data_dir) and plan["backend"] == "lsm"
    assert not (node.state / "runs").exists() or not list((node.state / "runs").glob("*.jsonl"))


def test_token_missing_wrong_and_node_unreachable(tmp_path: Path, agent_node, token_file: Path) -> None:
    node: AgentNode = agent_node("orders")
    laptop = tmp_path / "laptop"
    no_token = write_config(tmp_path / "none.toml", "orders", node.url, None)
    run = cli(laptop, "--config", no_token, "playbook", "run", "data-recovery", "--node", "orders", "--yes", "--json")
    assert run.code == 4, run.err
    assert "token" in run.json()["error"]
    wrong = tmp_path / "wrong.token"
    wrong.write_text("not-the-token\n")
    bad = write_config(tmp_path / "bad.toml", "orders", node.url, wrong)
    run = cli(laptop, "--config", bad, "playbook", "run", "data-recovery", "--node", "orders", "--yes", "--json")
    assert run.code == 4 and "token" in run.json()["error"]
    gone = write_config(tmp_path / "gone.toml", "orders", node.url, tmp_path / "no-such.token")
    run = cli(laptop, "--config", gone, "playbook", "run", "data-recovery", "--node", "orders", "--yes")
    assert run.code == 2 and "token file" in run.err
    assert not (node.state / "runs").exists() or not list((node.state / "runs").glob("*.jsonl"))
    node.stop()
    good = write_config(tmp_path / "good.toml", "orders", node.url, token_file)
    run = cli(laptop, "--config", good, "playbook", "run", "data-recovery", "--node", "orders", "--yes", "--json")
    assert run.code == 3, run.err
