"""Triage on real fault fixtures: the path walked, its evidence, the recommendation; overrides recorded."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from playbook_support import corrupt_rocksdb_table, fill, flip_byte, tree_state

from fleet import FleetSnapshot, Health, NodeSnapshot
from playbooks.audit import AuditLog
from playbooks.incidents import IncidentStore
from playbooks.state import StateDir
from playbooks.triage import record_triage, triage


def nodes(result: object) -> list[tuple[str, str]]:
    return [(entry.node, {True: "yes", False: "no", None: "unknown"}[entry.answer]) for entry in result.path]  # type: ignore[attr-defined]


def test_healthy_dir_walks_to_monitor(tmp_path: Path) -> None:
    data = fill(tmp_path / "db", count=100)
    result = triage(data_dir=data)
    assert result.healthy and result.recommended == [] and result.severity is None and result.fault is None
    assert nodes(result) == [
        ("fleet", "no"),
        ("data-here", "yes"),
        ("ransomware", "no"),
        ("files-present", "yes"),
        ("running", "no"),
        ("can-start", "yes"),
        ("stopped-corruption", "no"),
        ("crashed", "no"),
        ("running-disk", "no"),
        ("running-memory", "no"),
        ("standby-lag", "no"),
        ("backup-stale", "no"),
        ("archive-lag", "no"),
    ]
    assert all(entry.evidence for entry in result.path)
    assert "no backup repository is configured" in result.path[-2].evidence


def test_corrupt_table_recommends_data_recovery(tmp_path: Path) -> None:
    data = fill(tmp_path / "db")
    table = corrupt_rocksdb_table(data)
    before = tree_state(data)
    result = triage(data_dir=data)
    assert result.recommended[0] == "data-recovery" and result.severity == "P0"
    corruption = next(entry for entry in result.path if entry.node == "stopped-corruption")
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


def test_missing_files_without_a_known_backup_stop_and_ask(tmp_path: Path) -> None:
    """No repository known: whether a backup exists cannot be told, so the walk stops there (no silent "no")."""
    result = triage(data_dir=tmp_path / "gone")
    assert result.recommended == [] and result.fault is None and result.severity is None and not result.healthy
    assert nodes(result)[-1] == ("backup-recent", "unknown")
    assert result.unknown is not None and result.unknown.node == "backup-recent"
    assert "--repo" in result.unknown.evidence
    answered = triage(data_dir=tmp_path / "gone", overrides={"backup-recent": False})
    assert answered.recommended == ["restore", "data-salvage"] and answered.severity == "P0"
    assert answered.fault == "files-missing"


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
    snapshot = FleetSnapshot(
        taken_at=datetime.now(UTC),
        nodes=(
            NodeSnapshot(name="a", role="primary", epoch=2, health=Health.OK, group="orders"),
            NodeSnapshot(name="b", role="primary", epoch=2, health=Health.OK, group="orders"),
        ),
    )
    result = triage(snapshot=snapshot)
    assert result.recommended == ["split-brain"] and result.severity == "P0"
    assert result.pending == {}  # a playbook now, runnable
    independent = FleetSnapshot(
        taken_at=snapshot.taken_at, nodes=tuple(node.model_copy(update={"group": node.name}) for node in snapshot.nodes)
    )
    alone = triage(snapshot=independent, node="a")
    entry = next(entry for entry in alone.path if entry.node == "in-group")
    assert entry.answer is False and "not in a replication group" in entry.evidence
    assert "split-brain" not in [entry.node for entry in alone.path]


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
