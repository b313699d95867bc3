"""Issue 18, item 5: every change-making command leaves who, where from, what, and the outcome.

The issue found ``engine repair --yes``, ``wal truncate --yes``, ``backup prune --yes`` (which
deleted a WAL segment) and ``backup restore --replace`` leaving no entry. They run here for real
and their entries are read back with ``drconsole audit show --json``; the admin API's calls are
in integration/node/test_node_hardening.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from bad_input_cases import leaves
from cli_support import assert_error, cli, make_data_dir, tree_hash, wal_segments

from console.cli.audit import CHANGING

# Commands that change nothing, or whose changes are audited by what they run (the runner audits
# each step of a playbook; a node's admin hook its admin calls; serve its sessions; a drill works
# in its own sandbox).
NOT_CHANGING = {
    "tui",
    "dashboard",
    "demo",
    "engine get",
    "engine export",
    "engine stats",
    "engine verify",
    "wal validate",
    "backup list",
    "backup verify",
    "playbook list",
    "playbook show",
    "playbook run",
    "playbook resume",
    "playbook runs",
    "playbook cancel",
    "triage",
    "incident list",
    "incident show",
    "incident report",
    "incident verify",
    "audit verify",
    "audit show",
    "node serve",
    "node status",
    "fault list",
    "drill list",
    "drill run",
    "drill all",
    "serve ssh",
    "serve web",
    "status",
    "completion",
}


def test_every_command_is_either_audited_or_known_not_to_change_anything() -> None:
    commands = {command for command, _ in leaves()}
    changing = {" ".join(part for part in key if part) for key in CHANGING}
    assert changing <= commands
    unclassified = commands - changing - NOT_CHANGING
    assert not unclassified, f"classify these: audited (console/cli/audit.py CHANGING) or not: {unclassified}"


def _show(capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict]:
    result = cli(capsys, "audit", "show", "--json", *extra)
    assert result.code == 0, result.err
    return result.json()["entries"]


def test_destructive_commands_are_audited_with_who_where_and_outcome(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, any_backend: str
) -> None:
    monkeypatch.setenv("SSH_CLIENT", "192.0.2.10 50022 22")
    data = make_data_dir(tmp_path / "data", any_backend)
    repo = tmp_path / "repo"
    assert cli(capsys, "backup", "create", "--data-dir", data, "--repo", repo).code == 0
    assert cli(capsys, "backup", "create", "--data-dir", data, "--repo", repo, "--incremental").code == 0
    # a torn WAL tail for wal truncate to cut
    segment = wal_segments(data)[-1]
    with open(segment, "ab") as handle:
        handle.write(b"\x07" * 40)
    assert cli(capsys, "wal", "truncate", "--data-dir", data, "--yes").code == 0
    assert cli(capsys, "engine", "repair", "--data-dir", data, "--yes").code == 0
    # --replace puts the backup back over its own node's data dir (another node's is refused, exit 4).
    restored = cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", data, "--replace")
    assert restored.code == 0, restored.err
    assert (
        cli(
            capsys,
            "backup",
            "prune",
            "--repo",
            repo,
            "--keep-daily",
            "0",
            "--keep-weekly",
            "0",
            "--keep-monthly",
            "0",
            "--yes",
        ).code
        == 0
    )
    entries = _show(capsys, "--action", "cli.")
    pairs = [(entry["action"], entry["outcome"]) for entry in entries]
    for action in (
        "cli.backup.create",
        "cli.wal.truncate",
        "cli.engine.repair",
        "cli.backup.restore",
        "cli.backup.prune",
    ):
        assert (action, "started") in pairs and (action, "succeeded") in pairs, (action, pairs)
    prune = next(entry for entry in entries if entry["action"] == "cli.backup.prune" and entry["outcome"] == "started")
    assert prune["who"]["ssh_client"] == "192.0.2.10 50022 22" and prune["who"]["user"]
    assert prune["target"] == f"repo={repo}" and prune["args"]["yes"] == "True"
    restore = next(entry for entry in entries if entry["action"] == "cli.backup.restore")
    assert restore["args"]["replace"] == "True" and f"data_dir={data}" in restore["target"]
    text = cli(capsys, "audit", "show", "--action", "cli.engine.repair").out
    assert "from 192.0.2.10" in text and "cli.engine.repair" in text and "succeeded" in text
    assert cli(capsys, "audit", "verify").code == 0


def test_refused_and_failed_commands_are_audited_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], any_backend: str
) -> None:
    data = make_data_dir(tmp_path / "data", any_backend)
    assert cli(capsys, "engine", "repair", "--data-dir", data).code == 4
    assert cli(capsys, "engine", "put", "--data-dir", tmp_path / "nowhere", "k", "v").code == 3
    assert cli(capsys, "engine", "put", "--data-dir", data, "k", "a secret value").code == 0
    entries = _show(capsys)
    outcomes = [(entry["action"], entry["outcome"]) for entry in entries]
    assert ("cli.engine.repair", "refused") in outcomes and ("cli.engine.put", "failed") in outcomes
    failed = next(entry for entry in entries if entry["outcome"] == "failed")
    assert "does not exist" in failed["detail"]
    assert "a secret value" not in json.dumps(entries)  # values are data, not facts: only their size is kept
    put = [entry for entry in entries if entry["action"] == "cli.engine.put"][-1]
    assert put["args"]["value"] == "<14 bytes>" and put["args"]["key"] == "k"


def test_a_command_that_cannot_be_audited_does_not_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, any_backend: str
) -> None:
    data = make_data_dir(tmp_path / "data", any_backend)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the state dir's parent should be")
    monkeypatch.setenv("DRCONSOLE_STATE_DIR", str(blocker / "state"))
    before = tree_hash(data)
    result = cli(capsys, "engine", "repair", "--data-dir", data, "--yes")
    assert_error(result, 4, contains="unaudited")
    assert tree_hash(data) == before


def test_audit_show_since_and_limit(capsys: pytest.CaptureFixture[str], tmp_path: Path, any_backend: str) -> None:
    data = make_data_dir(tmp_path / "data", any_backend)
    for key in ("a", "b", "c"):
        assert cli(capsys, "engine", "put", "--data-dir", data, key, "v").code == 0
    assert len(_show(capsys, "--since", "1h")) == 6
    assert _show(capsys, "--since", "2099-01-01T00:00:00Z") == []
    assert [entry["args"]["key"] for entry in _show(capsys, "--limit", "2")] == ["c", "c"]
    assert "no audit entries" in cli(capsys, "audit", "show", "--since", "2099-01-01").out
    assert_error(cli(capsys, "audit", "show", "--since", "last tuesday"), 2, contains="--since")
    state = Path(os.environ["DRCONSOLE_STATE_DIR"])
    assert cli(capsys, "audit", "show", "--state-dir", state, "--limit", "1").code == 0
