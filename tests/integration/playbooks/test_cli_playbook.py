"""The CLI contract of ``playbook``, ``triage``, ``incident`` and ``audit``: shapes, exit codes, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playbook_support import cli, corrupt_rocksdb_table, fill, tree_state


def test_playbook_list_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    result = cli(capsys, "playbook", "list", "--json")
    assert result.code == 0
    payload = result.json()
    rows = payload["playbooks"]
    assert len(rows) >= 20
    for row in rows:
        assert set(row) >= {"id", "title", "severity", "destructive", "backends"}
    assert {row["id"] for row in rows} >= {"failover", "split-brain"}
    assert payload["pending"] == []  # every contract id is a playbook now
    text = cli(capsys, "playbook", "list")
    assert "recover-rocksdb" in text.out and "split-brain" in text.out


def test_playbook_show_and_unknown_ids(capsys: pytest.CaptureFixture[str]) -> None:
    shown = cli(capsys, "playbook", "show", "wal-truncate")
    assert shown.code == 0 and "steps:" in shown.out and "[destructive]" in shown.out
    assert cli(capsys, "playbook", "show", "restore", "--json").json()["id"] == "restore"
    unknown = cli(capsys, "playbook", "show", "wal-truncat", "--json")
    assert unknown.code == 2
    assert unknown.err.count("\n") == 1 and "did you mean wal-truncate" in unknown.err
    assert unknown.json()["exit_code"] == 2
    failover = cli(capsys, "playbook", "show", "failover")
    assert failover.code == 0 and "[destructive]" in failover.out and "node.promote" in failover.out


def test_run_json_shape_refusal_and_success(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = fill(tmp_path / "db")
    corrupt_rocksdb_table(data)
    before = tree_state(data)
    refused = cli(capsys, "playbook", "run", "data-recovery", "--data-dir", data, "--json")
    assert refused.code == 4 and refused.json()["status"] == "refused"
    assert tree_state(data) == before
    done = cli(capsys, "playbook", "run", "data-recovery", "--data-dir", data, "--yes", "--json")
    assert done.code == 0, done.err
    payload = done.json()
    assert set(payload) >= {"run_id", "playbook", "status", "steps"}
    assert payload["status"] == "succeeded" and payload["playbook"] == "data-recovery"
    assert all(set(step) >= {"id", "status", "duration_seconds"} for step in payload["steps"])
    assert done.err == ""  # --json: no event stream on stderr, one object on stdout
    runs = cli(capsys, "playbook", "runs", "--json").json()["runs"]
    assert [row["status"] for row in runs] == ["refused", "succeeded"]


def test_dry_run_text_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = fill(tmp_path / "db", count=50)
    before = tree_state(data)
    planned = cli(capsys, "playbook", "run", "wal-truncate", "--data-dir", data, "--dry-run")
    assert planned.code == 0 and "nothing is changed" in planned.out and "needs --yes" in planned.out
    assert tree_state(data) == before
    for args, code in ((["--param", "repo"], 2), (["--param", "colour=red"], 2)):
        bad = cli(capsys, "playbook", "run", "backup-full", "--data-dir", data, *args)
        assert bad.code == code and bad.err.startswith("drconsole: error: ")
    missing = cli(capsys, "playbook", "run", "cache-corruption", "--data-dir", tmp_path / "nowhere")
    assert missing.code == 3 and "does not exist" in missing.err
    wrong = cli(capsys, "playbook", "run", "recover-lsm", "--data-dir", data)
    assert wrong.code == 2 and "does not apply" in wrong.err
    usage = cli(capsys, "playbook", "run", "cache-corruption")
    assert usage.code == 2
    assert tree_state(data) == before


def test_triage_json_shape_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = fill(tmp_path / "db")
    healthy = cli(capsys, "triage", "--data-dir", data, "--json")
    assert healthy.code == 0
    payload = healthy.json()
    assert payload["recommended"] == [] and payload["severity"] is None and payload["fault"] is None
    assert payload["unknown"] is None
    assert all(set(entry) >= {"question", "answer", "evidence"} for entry in payload["path"])
    unknown = cli(capsys, "triage", "--data-dir", tmp_path / "gone", "--json")  # no backup known: it cannot tell
    assert unknown.code == 1 and unknown.json()["unknown"]["node"] == "backup-recent"
    assert unknown.json()["recommended"] == [] and unknown.json()["severity"] is None
    said = cli(capsys, "triage", "--data-dir", tmp_path / "gone")
    assert "unknown: Is there a recent backup?" in said.out and "--override backup-recent=yes" in said.out
    corrupt_rocksdb_table(data)
    sick = cli(capsys, "triage", "--data-dir", data, "--json")
    assert sick.code == 1
    assert sick.json()["recommended"][0] == "data-recovery" and sick.json()["incident"]
    text = cli(capsys, "triage", "--data-dir", data, "--override", "stopped-corruption=no")
    assert text.code in (0, 1) and "(override)" in text.out
    assert cli(capsys, "triage", "--data-dir", data, "--override", "corruption=maybe").code == 2
    assert cli(capsys, "triage", "--data-dir", data, "--override", "nosuch=yes").code == 2


def test_node_needs_a_config_and_uses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    no_config = cli(capsys, "playbook", "run", "cache-corruption", "--node", "orders-a")
    assert no_config.code == 2 and "config file" in no_config.err
    fill(tmp_path / "db", count=20)
    config = tmp_path / "drconsole.toml"
    config.write_text(
        '[[node]]\nname = "orders-a"\nengine = "rocksdb"\ndata_dir = "db"\nbackup_repo = "repo"\n', encoding="utf-8"
    )
    unknown = cli(capsys, "playbook", "run", "cache-corruption", "--node", "orders-b")
    assert unknown.code == 2 and "orders-a" in unknown.err
    backup = cli(capsys, "playbook", "run", "backup-full", "--node", "orders-a", "--json")
    assert backup.code == 0, backup.err
    assert (tmp_path / "repo" / "daily").is_dir()  # the node's backup_repo was the default repo
    triaged = cli(capsys, "triage", "--node", "orders-a", "--json")
    assert triaged.code == 0, triaged.err
    assert triaged.json()["path"][0]["answer"] == "yes"  # a fleet snapshot of the configured node


def test_incidents_list_show_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = fill(tmp_path / "db")
    assert cli(capsys, "triage", "--data-dir", data, "--json").json().get("incident") is None  # healthy: none
    assert cli(capsys, "incident", "list", "--json").json()["incidents"] == []
    corrupt_rocksdb_table(data)
    sick = cli(capsys, "triage", "--data-dir", data, "--json").json()
    incident = sick["incident"]
    listed = cli(capsys, "incident", "list", "--json").json()["incidents"]
    assert [row["id"] for row in listed] == [incident] and listed[0]["status"] == "open"
    assert listed[0]["severity"] == sick["severity"] == "P0"
    assert cli(capsys, "incident", "verify", incident).code == 1  # no run has passed its checks yet
    assert cli(capsys, "playbook", "run", "data-recovery", "--data-dir", data, "--yes").code == 0
    listed = cli(capsys, "incident", "list", "--json").json()["incidents"]
    # Nobody serves this data dir: the run's checks passed and it opens, so the incident is resolved.
    assert [row["id"] for row in listed] == [incident] and listed[0]["status"] == "resolved"
    assert listed[0]["resolved_at"] and listed[0]["rto_seconds"] <= listed[0]["target_rto_seconds"]
    shown = cli(capsys, "incident", "show", incident)
    assert "triage" in shown.out and "run_finished" in shown.out and "verified" in shown.out
    report = tmp_path / "report.md"
    assert cli(capsys, "incident", "report", incident, "--output", report).code == 0
    text = report.read_text()
    assert text.startswith(f"# Incident Report: {incident}") and "## Timeline (UTC)" in text
    assert "Service restored:" in text and "- **Severity**: P0" in text
    assert cli(capsys, "triage", "--data-dir", data).code == 0  # healthy again: nothing new is opened
    assert len(cli(capsys, "incident", "list", "--json").json()["incidents"]) == 1
    closed = cli(capsys, "incident", "close", incident, "--reason", "postmortem done", "--json")
    assert closed.json()["status"] == "closed"
    assert cli(capsys, "incident", "list", "--json").json()["incidents"][0]["status"] == "closed"
    assert cli(capsys, "incident", "show", "INC-19990101-001").code == 2


def test_audit_verify_detects_an_edited_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], state_dir: Path
) -> None:
    data = fill(tmp_path / "db", count=20)
    text = cli(capsys, "playbook", "run", "cache-corruption", "--data-dir", data)
    assert text.code == 0
    assert "▶ [1/4] verify" in text.err and "✓ restart succeeded" in text.err  # symbol and word
    assert "cache-corruption succeeded" in text.out
    ok = cli(capsys, "audit", "verify", "--json")
    assert ok.code == 0 and ok.json()["ok"] and ok.json()["entries"] >= 2
    log = state_dir / "audit.jsonl"
    lines = log.read_text().splitlines()
    entry = json.loads(lines[1])
    entry["outcome"] = "failed"
    lines[1] = json.dumps(entry, sort_keys=True)
    log.write_text("\n".join(lines) + "\n")
    tampered = cli(capsys, "audit", "verify")
    assert tampered.code == 1 and "TAMPERED" in tampered.out and "line 2" in tampered.out
