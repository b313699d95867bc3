"""Triage on real fault fixtures: the path walked, its evidence, the recommendation; overrides recorded."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from playbooks.audit import AuditLog
from playbooks.fleet import FleetSnapshot, Health, NodeSnapshot
from playbooks.incidents import IncidentStore
from playbooks.state import StateDir
from playbooks.triage import record_triage, triage
from playbook_support import corrupt_rocksdb_table, fill, flip_byte, tree_state


def nodes(result: object) -> list[tuple[str, str]]:
    return [(entry.node, {True: "yes", False: "no", None: "unknown"}[entry.answer]) for entry in result.path]  # type: ignore[attr-defined]


def test_healthy_dir_walks_to_monitor(tmp_path: Path) -> None:
    data = fill(tmp_path / "db", count=100)
    result = triage(data_dir=data)
    assert result.recommended == [] and result.severity == "P3"
    assert nodes(result) == [("fleet", "no"), ("ransomware", "no"), ("files-present", "yes"), ("running", "no"),
                             ("can-start", "yes"), ("corruption", "no"), ("running-disk", "no"),
                             ("running-memory", "no"), ("crash-signs", "no")]
    assert all(entry.evidence for entry in result.path)


def test_corrupt_table_recommends_data_recovery(tmp_path: Path) -> None:
    data = fill(tmp_path / "db")
    table = corrupt_rocksdb_table(data)
    before = tree_state(data)
    result = triage(data_dir=data)
    assert result.recommended[0] == "data-recovery" and result.severity == "P0"
    corruption = next(entry for entry in result.path if entry.node == "corruption")
    assert corruption.answer is True and table.name in corruption.evidence
    assert tree_state(data) == before


def test_wal_only_damage_recommends_wal_truncate(tmp_path: Path) -> None:
    from engines import create_engine

    data = tmp_path / "db"
    with create_engine(data, backend="rocksdb") as engine:
        for index in range(300):
            engine.put(b"k%04d" % index, b"v" * 200)
    flip_byte(sorted((data / "wal").iterdir())[0], 30000)
    result = triage(data_dir=data)
    assert result.recommended[0] == "wal-truncate", [(e.node, e.answer, e.evidence) for e in result.path]


def test_missing_files_without_backup_recommend_restore_and_salvage(tmp_path: Path) -> None:
    result = triage(data_dir=tmp_path / "gone")
    assert result.recommended == ["restore", "data-salvage"]
    assert ("backup-recent", "unknown") in nodes(result)


def test_damaged_marker_recommends_config_recovery(tmp_path: Path) -> None:
    data = fill(tmp_path / "db", count=10)
    (data / "drconsole.json").write_text("{", encoding="utf-8")
    result = triage(data_dir=data)
    assert result.recommended == ["config-recovery"], nodes(result)
    assert ("can-start", "no") in nodes(result)


def test_full_disk_threshold_recommends_disk_space(tmp_path: Path) -> None:
    data = fill(tmp_path / "db", count=10)
    result = triage(data_dir=data, disk_threshold=0.0)
    assert result.recommended == ["disk-space"]
    disk = next(entry for entry in result.path if entry.node == "running-disk")
    assert "threshold 0 %" in disk.evidence


def test_ransomware_signs_come_first(tmp_path: Path) -> None:
    data = fill(tmp_path / "db", count=10)
    (data / "data.locked").write_bytes(b"\x00" * 10)
    assert triage(data_dir=data).recommended == ["ransomware"]


def test_fleet_split_brain_recommends_the_split_brain_playbook() -> None:
    snapshot = FleetSnapshot(taken_at=datetime.now(UTC), nodes=(
        NodeSnapshot(name="a", role="primary", epoch=2, health=Health.OK),
        NodeSnapshot(name="b", role="primary", epoch=2, health=Health.OK)))
    result = triage(snapshot=snapshot)
    assert result.recommended == ["split-brain"] and result.severity == "P0"
    assert result.pending == {}  # a playbook now, runnable


def test_override_changes_the_path_and_is_recorded(tmp_path: Path) -> None:
    data = fill(tmp_path / "db", count=10)
    result = triage(data_dir=data, overrides={"can-start": False})
    entry = next(entry for entry in result.path if entry.node == "can-start")
    assert entry.overridden and entry.probe_answer is True and entry.answer is False
    assert "overridden by the responder" in entry.evidence
    assert result.recommended == ["emergency-response"]
    record_triage(result)
    assert result.incident is not None
    incident = IncidentStore().load(result.incident)
    kinds = [event.kind for event in incident.events]
    assert "override" in kinds and "triage" in kinds
    audit = AuditLog(StateDir().audit_log)
    assert [entry["action"] for entry in audit.entries()] == ["triage.override"]
    assert audit.verify().ok
    # The same target found healthy later is noted on the incident; it does not resolve it (that takes
    # a run whose checks passed and the target serving again), and it opens nothing new.
    healthy = record_triage(triage(data_dir=data))
    assert healthy.incident == result.incident
    after = IncidentStore().load(result.incident)
    assert after.status == "open" and after.events[-1].kind == "triage" and len(IncidentStore().list()) == 1
