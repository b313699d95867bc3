"""The audit log's hash chain: intact when appended to, broken by any edit, deletion or cut."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from playbooks.audit import GENESIS, AuditLog
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
