"""Issue 18, item 4: the audit chain cannot be rewritten without showing.

Each test first does what the attacker did against the old, unkeyed chain (edit a user name and
recompute every hash and the head; drop the last line and fix the head; delete the log and its
head), then checks that ``drconsole audit verify`` fails (exit 1) and says why. The log is
written by real CLI commands; the attacks are done to the real files.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
from pathlib import Path

import pytest
from cli_support import assert_error, cli, make_data_dir

from playbooks.audit import GENESIS, AuditLog
from playbooks.state import Actor


def _state() -> Path:
    return Path(os.environ["DRCONSOLE_STATE_DIR"])


def _key() -> Path:
    return Path(os.environ["DRCONSOLE_AUDIT_KEY"])


def _plain(entry: dict) -> str:
    """The old chain's hash: SHA-256 of the canonical JSON, which anyone can recompute."""
    body = {name: value for name, value in entry.items() if name != "hash"}
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


def _rewrite(log: Path, change) -> list[dict]:
    """The attacker's rewrite: change entries, strip the key ids, recompute every hash and the head."""
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    change(entries)
    previous = GENESIS
    for entry in entries:
        entry.pop("key_id", None)
        entry["prev_hash"] = previous
        entry["hash"] = previous = _plain(entry)
    log.write_text("".join(json.dumps(entry, sort_keys=True) + "\n" for entry in entries))
    log.with_name("audit.head").write_text(json.dumps({"seq": entries[-1]["seq"], "hash": previous}) + "\n")
    return entries


@pytest.fixture
def audited(tmp_path: Path, capsys: pytest.CaptureFixture[str], any_backend: str) -> Path:
    """A log of real CLI changes: init, put, repair refused, repair confirmed."""
    data = tmp_path / "data"
    assert cli(capsys, "engine", "init", "--engine", any_backend, "--data-dir", data).code == 0
    assert cli(capsys, "engine", "put", "--data-dir", data, "k", "v").code == 0
    assert cli(capsys, "engine", "repair", "--data-dir", data).code == 4
    assert cli(capsys, "engine", "repair", "--data-dir", data, "--yes").code == 0
    log = _state() / "audit.jsonl"
    ok = cli(capsys, "audit", "verify", "--json")
    assert ok.code == 0, ok.out
    assert ok.json()["keyed_entries"] == 8 and not ok.json()["unkeyed"]
    return log


def test_the_key_is_made_on_first_use_readable_by_its_owner_only(audited: Path) -> None:
    key = _key()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700  # the directory made for it
    assert key.parent != audited.parent  # never beside the log
    entry = json.loads(audited.read_text().splitlines()[0])
    assert entry["key_id"] and entry["key_id"] not in key.read_text()  # the id does not give the secret away


def test_an_edited_user_with_every_hash_and_the_head_recomputed_is_caught(
    audited: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def blame_someone_else(entries: list[dict]) -> None:
        for entry in entries:
            entry["who"]["user"] = "mallory"

    _rewrite(audited, blame_someone_else)
    result = cli(capsys, "audit", "verify")
    assert result.code == 1 and "TAMPERED" in result.out
    assert "rewritten without the key" in result.out


def test_an_edit_signed_with_another_key_is_caught(
    audited: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The attacker's own key in place of the real one, for the rewrite only; the real key is back for verify.
    forged = AuditLog(tmp_path / "forged" / "audit.jsonl", key_path=tmp_path / "attacker.key")
    forged.append(actor=Actor("mallory", None), action="cli.engine.repair", target="x", outcome="succeeded")
    (entry,) = forged.entries()
    lines = audited.read_text().splitlines()
    original = json.loads(lines[-1])
    entry.update(seq=original["seq"], prev_hash=original["prev_hash"])
    lines[-1] = json.dumps(entry, sort_keys=True)
    audited.write_text("\n".join(lines) + "\n")
    result = cli(capsys, "audit", "verify")
    assert result.code == 1 and "another key" in result.out


def test_a_dropped_last_line_with_the_head_fixed_is_caught(audited: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = audited.read_text().splitlines()
    last_kept = json.loads(lines[-2])
    audited.write_text("\n".join(lines[:-1]) + "\n")
    audited.with_name("audit.head").write_text(json.dumps({"seq": last_kept["seq"], "hash": last_kept["hash"]}))
    result = cli(capsys, "audit", "verify", "--json")
    assert result.code == 1
    reasons = " ".join(problem["reason"] for problem in result.json()["problems"])
    assert "ends at entry 7" in reasons and "holds entry 8" in reasons and "cut off" in reasons


def test_deleting_the_anchor_as_well_is_caught(audited: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = audited.read_text().splitlines()
    audited.write_text("\n".join(lines[:-1]) + "\n")
    kept = json.loads(lines[-2])
    audited.with_name("audit.head").write_text(json.dumps({"seq": kept["seq"], "hash": kept["hash"]}))
    for anchor in (_key().parent / "drconsole-audit-anchors").iterdir():
        anchor.unlink()
    result = cli(capsys, "audit", "verify")
    assert result.code == 1 and "anchor" in result.out and "missing" in result.out


def test_a_forged_anchor_is_caught(audited: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (anchor,) = (_key().parent / "drconsole-audit-anchors").iterdir()
    record = json.loads(anchor.read_text())
    record["seq"] -= 1
    anchor.write_text(json.dumps(record))
    result = cli(capsys, "audit", "verify")
    assert result.code == 1 and "forged" in result.out


def test_both_files_deleted_while_runs_exist_is_caught(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], any_backend: str
) -> None:
    data = make_data_dir(tmp_path / "data", any_backend)
    run = cli(capsys, "playbook", "run", "cache-corruption", "--data-dir", data, "--yes")
    assert run.code == 0, run.err
    state = _state()
    assert list((state / "runs").glob("*.jsonl"))
    (state / "audit.jsonl").unlink()
    (state / "audit.head").unlink()
    result = cli(capsys, "audit", "verify", "--json")
    assert result.code == 1
    reasons = " ".join(problem["reason"] for problem in result.json()["problems"])
    assert "run journal(s) exist" in reasons and "missing" in reasons
    # and with the anchor gone too, the journals alone still say so
    for anchor in (_key().parent / "drconsole-audit-anchors").iterdir():
        anchor.unlink()
    again = cli(capsys, "audit", "verify", "--json")
    assert again.code == 1 and "run journal(s) exist" in again.out


def test_an_old_unkeyed_log_still_verifies_and_is_reported_unkeyed(capsys: pytest.CaptureFixture[str]) -> None:
    state = _state()
    state.mkdir(parents=True)
    previous = GENESIS
    lines = []
    for seq in (1, 2):
        entry = {
            "seq": seq,
            "time": f"2020-01-01T00:00:0{seq}.000Z",
            "who": {"user": "old", "ssh_client": None},
            "action": "engine.repair",
            "target": "/d",
            "outcome": "succeeded",
            "detail": "",
            "prev_hash": previous,
        }
        entry["hash"] = previous = _plain(entry)
        lines.append(json.dumps(entry, sort_keys=True))
    (state / "audit.jsonl").write_text("\n".join(lines) + "\n")
    (state / "audit.head").write_text(json.dumps({"seq": 2, "hash": previous}))
    old = cli(capsys, "audit", "verify", "--json")
    assert old.code == 0 and old.json()["unkeyed"] is True
    assert "UNKEYED" in cli(capsys, "audit", "verify").out
    # The first keyed append chains on from the old entries; both verify, the old ones counted apart.
    AuditLog(state / "audit.jsonl").append(
        actor=Actor("new", None), action="cli.engine.flush", target="/d", outcome="succeeded"
    )
    mixed = cli(capsys, "audit", "verify", "--json").json()
    assert mixed["ok"] and mixed["keyed_entries"] == 1 and mixed["unkeyed_entries"] == 2 and not mixed["unkeyed"]


def test_the_head_goes_to_syslog_and_a_cut_shows_against_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real datagram socket stands where /dev/log is: what journald or rsyslog would receive.
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "log.sock"
    listener.bind(str(path))
    listener.settimeout(0.5)
    monkeypatch.setenv("DRCONSOLE_AUDIT_SYSLOG", str(path))
    try:
        data = tmp_path / "data"
        assert cli(capsys, "engine", "init", "--engine", "lsm", "--data-dir", data).code == 0
        assert cli(capsys, "engine", "put", "--data-dir", data, "k", "v").code == 0
        received = []
        for _ in range(4):
            received.append(listener.recv(4096).decode())
    finally:
        listener.close()
    assert all(line.startswith("<86>drconsole-audit[") and " head log_id=" in line for line in received)
    syslog_file = tmp_path / "auth.log"
    syslog_file.write_text(
        "".join(f"Dec  6 08:00:00 host {line.split('>', 1)[1]}\n" for line in received)
        + "Dec  6 08:00:01 host drconsole-audit[1]: head log_id=0000000000000000 seq=99 "
        + "hash="
        + "0" * 64
        + " mac="
        + "0" * 64
        + "\n"
    )  # forged: ignored
    assert cli(capsys, "audit", "verify", "--syslog", syslog_file).code == 0
    # cut the last entry, fix the head, and delete the anchor file: syslog still has entry 4
    log = _state() / "audit.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines[:-1]) + "\n")
    kept = json.loads(lines[-2])
    log.with_name("audit.head").write_text(json.dumps({"seq": kept["seq"], "hash": kept["hash"]}))
    for anchor in (_key().parent / "drconsole-audit-anchors").iterdir():
        anchor.unlink()
    result = cli(capsys, "audit", "verify", "--syslog", syslog_file, "--json")
    assert result.code == 1
    assert any(
        "syslog" in problem["reason"] and "holds entry 4" in problem["reason"] for problem in result.json()["problems"]
    )


def test_an_unreadable_key_is_exit_3_not_a_false_ok(
    audited: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRCONSOLE_AUDIT_KEY", str(_key().parent))  # a directory: it cannot be read as a key
    assert_error(cli(capsys, "audit", "verify"), 3, contains="audit key")
