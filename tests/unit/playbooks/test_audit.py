"""The audit log's hash chain: intact when appended to, broken by any edit, deletion or cut."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from playbooks.audit import GENESIS, AuditLog
from playbooks.audit_key import AuditKey
from playbooks.state import Actor

ACTOR = Actor(user="oncall", ssh_client="10.0.0.7 51234 22")


def fill(log: AuditLog, count: int) -> None:
    for index in range(count):
        log.append(
            actor=ACTOR,
            action="engine.repair",
            target=f"/data/{index}",
            outcome="succeeded",
            detail=f"entry {index}",
            run_id="r1",
        )


def test_entries_chain_and_carry_who_and_what(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    fill(log, 3)
    entries = log.entries()
    assert [entry["seq"] for entry in entries] == [1, 2, 3]
    assert entries[0]["prev_hash"] == GENESIS
    assert entries[1]["prev_hash"] == entries[0]["hash"]
    assert entries[0]["who"] == {"user": "oncall", "ssh_client": "10.0.0.7 51234 22"}
    assert entries[0]["action"] == "engine.repair" and entries[0]["outcome"] == "succeeded"
    result = log.verify()
    assert result.ok and result.entries == 3


def test_an_edited_line_is_detected(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    fill(log, 4)
    lines = log.path.read_text().splitlines()
    entry = json.loads(lines[1])
    entry["outcome"] = "refused"  # rewrite history
    lines[1] = json.dumps(entry, sort_keys=True)
    log.path.write_text("\n".join(lines) + "\n")
    result = log.verify()
    assert not result.ok
    assert any(problem["line"] == 2 and "edited" in problem["reason"] for problem in result.problems)


def test_an_edit_that_recomputes_its_own_hash_still_breaks_the_next_link(tmp_path: Path) -> None:
    from playbooks.audit import _digest

    log = AuditLog(tmp_path / "audit.jsonl")
    fill(log, 3)
    lines = log.path.read_text().splitlines()
    entry = json.loads(lines[0])
    entry["target"] = "/elsewhere"
    entry["hash"] = _digest(entry)
    lines[0] = json.dumps(entry, sort_keys=True)
    log.path.write_text("\n".join(lines) + "\n")
    result = log.verify()
    assert any(problem["line"] == 2 and "chain" in problem["reason"] for problem in result.problems)


def test_deleted_and_cut_lines_are_detected(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    fill(log, 4)
    lines = log.path.read_text().splitlines()
    log.path.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    assert not log.verify().ok
    fill_again = AuditLog(tmp_path / "second.jsonl")
    fill(fill_again, 4)
    lines = fill_again.path.read_text().splitlines()
    fill_again.path.write_text("\n".join(lines[:3]) + "\n")  # the last entry cut off
    result = fill_again.verify()
    assert not result.ok and any("cut off" in problem["reason"] for problem in result.problems)


def test_concurrent_appends_keep_one_chain(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    threads = [threading.Thread(target=fill, args=(AuditLog(log.path), 10)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = log.verify()
    assert result.ok and result.entries == 40


def test_a_key_being_made_is_never_read_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two commands making the key at once, the first paused between creating and writing it.

    Before, the first created the key file empty (O_EXCL) and then wrote it: the second read the
    empty file, called the key damaged, and refused to run its command unaudited. Now the key is
    linked into place whole: the second makes its own, the first finds it and uses it.
    """
    key = tmp_path / "keys" / "audit.key"
    paused, resume = threading.Event(), threading.Event()
    real_write = os.write
    first = threading.get_ident()

    def write(descriptor: int, data: bytes) -> int:
        if threading.get_ident() == first and not paused.is_set():
            paused.set()
            assert resume.wait(30)
        return real_write(descriptor, data)

    monkeypatch.setattr(os, "write", write)
    made: dict[str, AuditKey | BaseException] = {}

    def second() -> None:
        assert paused.wait(30)
        try:
            made["second"] = AuditKey.load_or_create(key)
        except BaseException as exc:  # noqa: BLE001 - reported below
            made["second"] = exc
        finally:
            resume.set()

    helper = threading.Thread(target=second)
    helper.start()
    made["first"] = AuditKey.load_or_create(key)
    helper.join(30)
    assert isinstance(made["second"], AuditKey), made["second"]
    assert isinstance(made["first"], AuditKey)
    assert made["first"].secret == made["second"].secret  # one key, the one on disk
    on_disk = AuditKey.load(key)
    assert on_disk is not None and on_disk.secret == made["first"].secret
    assert sorted(path.name for path in key.parent.iterdir()) == ["audit.key"]  # no scratch file left
