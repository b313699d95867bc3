"""Read-only mode has no write capability: every writing action is refused at the action layer."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from engines import create_engine
from playbooks.actions import REGISTRY, ActionContext
from playbooks.audit import AuditLog
from playbooks.errors import ReadOnlyRefusal
from playbooks.state import StateDir


def tree_hash(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def dummy_args(name: str, tmp_path: Path) -> dict[str, object]:
    entry = REGISTRY.get(name)
    return {arg: str(tmp_path / f"arg-{arg}") for arg, required in entry.arguments.items() if required}


def test_every_writing_action_is_refused_in_read_only_mode_and_audited(tmp_path: Path, state_dir: Path) -> None:
    data = tmp_path / "db"
    with create_engine(data, backend="rocksdb") as engine:
        engine.put(b"k", b"v")
    before = tree_hash(data)
    audit = AuditLog(StateDir().audit_log)
    context = ActionContext(data_dir=data, backend="rocksdb", read_only=True, audit=audit, run_id="ro")
    writing = [entry.name for entry in REGISTRY if entry.writes]
    assert {
        "engine.repair",
        "engine.safety_copy",
        "wal.truncate",
        "backup.restore",
        "config.repair",
        "engine.flush",
        "engine.compact",
        "disk.relocate_quarantine",
    } <= set(writing)
    for name in writing:
        with pytest.raises(ReadOnlyRefusal) as caught:
            REGISTRY.invoke(name, context, dummy_args(name, tmp_path))
        assert caught.value.exit_code == 4
    assert tree_hash(data) == before
    assert not any(path.name.startswith("arg-") for path in tmp_path.iterdir())
    refused = [entry for entry in audit.entries() if entry["outcome"] == "refused"]
    assert {entry["action"] for entry in refused} == set(writing)
    assert audit.verify().ok


def test_reading_actions_pass_the_gate_in_read_only_mode(tmp_path: Path) -> None:
    data = tmp_path / "db"
    with create_engine(data, backend="rocksdb") as engine:
        engine.put(b"k", b"v")
    before = tree_hash(data)
    context = ActionContext(data_dir=data, backend="rocksdb", read_only=True)
    for name in (
        "engine.verify",
        "engine.open_check",
        "wal.validate",
        "disk.usage",
        "config.check",
        "checks.verify_recovery",
    ):
        assert REGISTRY.invoke(name, context, {}).ok, name
    assert tree_hash(data) == before


def test_writing_actions_are_audited_with_their_outcome(tmp_path: Path) -> None:
    data = tmp_path / "db"
    with create_engine(data, backend="rocksdb") as engine:
        engine.put(b"k", b"v")
    audit = AuditLog(tmp_path / "audit.jsonl")
    context = ActionContext(data_dir=data, backend="rocksdb", audit=audit, run_id="r1", playbook="p", step="s")
    REGISTRY.invoke("engine.flush", context, {})
    outcomes = [(entry["action"], entry["outcome"]) for entry in audit.entries()]
    assert outcomes == [("engine.flush", "started"), ("engine.flush", "succeeded")]
    assert audit.entries()[1]["target"] == str(data) and audit.entries()[1]["run_id"] == "r1"
