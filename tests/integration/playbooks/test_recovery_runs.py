"""Playbooks run for real on real damage: the data dir recovers, a safety copy exists, nothing is deleted."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playbook_support import corrupt_rocksdb_table, fill, flip_byte, tree_state
from support import crash_copy

from engines import create_engine, open_engine
from engines.fsutil import QUARANTINE_DIR
from playbooks.actions.safety import MANIFEST_NAME
from playbooks.audit import AuditLog
from playbooks.incidents import IncidentStore
from playbooks.journal import read_journal
from playbooks.runner import Runner, RunOptions
from playbooks.state import StateDir


def contents(root: Path) -> set[str]:
    """The content hash of every file under ``root`` (quarantine included): "nothing deleted" means
    every hash before a run is still somewhere after it."""
    return {hashlib.sha256(path.read_bytes()).hexdigest() for path in root.rglob("*") if path.is_file()}


def run(playbook: str, data: Path, **options: object) -> object:
    return Runner().run(playbook, data, RunOptions(**options))  # type: ignore[arg-type]


def test_rocksdb_corrupt_table_recovers_with_safety_copy_and_nothing_deleted(tmp_path: Path) -> None:
    data = fill(tmp_path / "db")
    table = corrupt_rocksdb_table(data)
    damaged = hashlib.sha256(table.read_bytes()).hexdigest()
    before = contents(data)
    result = run("data-recovery", data, assume_yes=True)
    assert result.status == "succeeded", result.to_json()  # type: ignore[attr-defined]
    statuses = {step.id: step.status for step in result.steps}  # type: ignore[attr-defined]
    assert statuses["safety-copy"] == "succeeded"
    assert statuses["recover-rocksdb/check"] == "problem"
    assert statuses["recover-rocksdb/repair"] == "succeeded"
    assert statuses["validate"] == "succeeded" and statuses["health"] == "succeeded"
    safety = data / QUARANTINE_DIR / f"run-{result.run_id}" / "safety-copy"  # type: ignore[attr-defined]
    assert (safety / MANIFEST_NAME).exists()
    assert hashlib.sha256((safety / "rocksdb" / table.name).read_bytes()).hexdigest() == damaged
    assert before <= contents(data), "a file that existed before the run is gone"
    with open_engine(data) as engine:
        assert engine.verify().ok
        assert engine.get(b"key000001") == b"value-000001" * 4
        assert engine.get(b"after-flush") is not None
        assert sum(1 for _ in engine.scan()) == 3001
    journal = read_journal(Path(result.journal))  # type: ignore[attr-defined]
    assert journal.status == "succeeded" and journal.interrupted_step is None
    audit = AuditLog(StateDir().audit_log)
    assert audit.verify().ok
    assert ("engine.repair", "succeeded") in [(entry["action"], entry["outcome"]) for entry in audit.entries()]
    incident = IncidentStore().load(result.incident)  # type: ignore[attr-defined]
    assert incident.severity == "P0" and any(event.kind == "run_finished" for event in incident.events)
    assert incident.status == "resolved" and incident.resolved_at is not None  # checks passed, the data dir opens


def corrupt(data: Path, backend: str) -> None:
    if backend == "lsm":
        table = sorted((data / "sstables").glob("*.sst"))[0]
        flip_byte(table, table.stat().st_size // 3)
    elif backend == "cow":
        page_file = data / "data.cow"
        flip_byte(page_file, page_file.stat().st_size // 2)
    else:
        corrupt_rocksdb_table(data)


@pytest.mark.parametrize("backend", ["lsm", "cow", "rocksdb"])
def test_data_recovery_on_each_backend_verifies_clean_or_reports_the_loss(tmp_path: Path, backend: str) -> None:
    data = fill(tmp_path / "db", backend, count=3000, batches=3)
    corrupt(data, backend)
    before = contents(data)
    result = run("data-recovery", data, assume_yes=True)
    assert result.status == "succeeded", result.to_json()  # type: ignore[attr-defined]
    assert before <= contents(data)
    with open_engine(data) as engine:
        assert engine.verify().ok
        count = sum(1 for _ in engine.scan())
    if count < 3001:
        assert result.lost, "keys are missing and the run did not report a loss"  # type: ignore[attr-defined]


def test_lsm_lost_table_is_filled_back_from_a_backup(tmp_path: Path) -> None:
    from engines.backup import create_backup

    data = fill(tmp_path / "db", "lsm", count=3000, batches=3)
    repo = tmp_path / "repo"
    create_backup(repo, data_dir=data)
    corrupt(data, "lsm")
    result = run("recover-lsm", data, assume_yes=True, params={"repo": str(repo), "fill_gap": "yes"})
    assert result.status == "succeeded", result.to_json()  # type: ignore[attr-defined]
    with open_engine(data) as engine:
        assert engine.verify().ok
        assert sum(1 for _ in engine.scan()) == 3001


def test_lsm_keys_older_than_the_archive_come_back_from_the_backup_and_no_deleted_key_returns(
    tmp_path: Path,
) -> None:
    """The demo's case: the lost table held keys written before the archived WAL begins. The backup has
    them; keys deleted or overwritten since it must stay as the WAL says. No fill_gap: the fill is exact
    (keys nothing wrote after the backup), so it runs by itself, and the run accounts the loss recovered."""
    from engines.backup import create_backup
    from engines.backup.archive import WalArchive
    from engines.backup.repository import Repository
    from faults import inject

    data, repo = tmp_path / "db", tmp_path / "repo"
    seed = b"s" * 200
    with create_engine(data, backend="lsm", wal_segment_bytes=1 << 16, wal_keep_segments=0) as engine:
        for start in range(0, 1000, 50):
            engine.write_batch([(b"seed%04d" % i, seed) for i in range(start, start + 50)])
        engine.flush()
    create_backup(repo, data_dir=data)
    with open_engine(data) as engine:
        for i in range(0, 1000, 10):
            engine.delete(b"seed%04d" % i)
        for i in range(5, 1000, 10):
            engine.put(b"seed%04d" % i, b"new")
        engine.write_batch([(b"late%04d" % i, b"l" * 200) for i in range(300)])
        engine.flush()
        engine.compact()
    create_backup(repo, data_dir=data, incremental=True)
    first_archived = WalArchive(Repository.open(str(repo))).segments(present=True)[0].first_lsn
    assert first_archived > 1  # the seeds are in no WAL any more: only the backup has them
    inject("sstable-corrupt", data, seed=3)

    result = run("recover-lsm", data, assume_yes=True, params={"repo": str(repo)})

    assert result.status == "succeeded", result.to_json()  # type: ignore[attr-defined]
    statuses = {step.id: step.status for step in result.steps}  # type: ignore[attr-defined]
    assert statuses["fill-exact"] == "succeeded" and statuses["fill-gap"] == "skipped"
    assert result.lost == [] and result.recovered  # type: ignore[attr-defined]
    with open_engine(data) as engine:
        assert engine.verify().ok
        keys = dict(engine.scan())
    assert not [i for i in range(0, 1000, 10) if b"seed%04d" % i in keys]  # deleted: still deleted
    assert all(keys.get(b"seed%04d" % i) == b"new" for i in range(5, 1000, 10))  # overwritten: the new value
    assert all(keys.get(b"seed%04d" % i) == seed for i in range(1000) if i % 10 not in (0, 5))  # back
    assert all(b"late%04d" % i in keys for i in range(300))


def test_wal_truncate_cuts_at_the_first_bad_record_and_keeps_the_tail(tmp_path: Path) -> None:
    data = tmp_path / "db"
    with create_engine(data, backend="rocksdb") as engine:
        for index in range(300):
            engine.put(b"k%04d" % index, b"v" * 200)
    segment = sorted((data / "wal").iterdir())[0]
    flip_byte(segment, 30000)
    original = segment.read_bytes()
    result = run("wal-truncate", data, assume_yes=True)
    assert result.status == "succeeded", result.to_json()  # type: ignore[attr-defined]
    quarantine = data / QUARANTINE_DIR / f"run-{result.run_id}" / "wal-truncate"  # type: ignore[attr-defined]
    tails = list(quarantine.iterdir())
    assert len(tails) == 1
    kept = segment.read_bytes() if segment.exists() else b""
    assert kept + tails[0].read_bytes() == original  # cut, not lost: every byte is somewhere
    with open_engine(data) as engine:
        assert engine.verify().ok
        assert engine.get(b"k0000") == b"v" * 200


def test_config_recovery_rebuilds_a_damaged_marker_and_keeps_the_old_one(tmp_path: Path) -> None:
    data = fill(tmp_path / "db", count=50)
    (data / "drconsole.json").write_text('{"backend": "rocksdb", "epoch": ', encoding="utf-8")
    result = run("config-recovery", data, assume_yes=True)
    assert result.status == "succeeded", result.to_json()  # type: ignore[attr-defined]
    assert json.loads((data / "drconsole.json").read_text())["backend"] == "rocksdb"
    kept = data / QUARANTINE_DIR / f"run-{result.run_id}" / "drconsole.json.damaged"  # type: ignore[attr-defined]
    assert kept.read_text() == '{"backend": "rocksdb", "epoch": '
    with open_engine(data) as engine:
        assert engine.get(b"key000010") is not None


def test_process_crash_replays_what_the_killed_writer_logged(tmp_path: Path) -> None:
    data = tmp_path / "db"
    engine = create_engine(data, backend="rocksdb")
    engine.write_batch([(b"k%04d" % i, b"v") for i in range(100)])
    engine._wal.flush()  # type: ignore[union-attr]
    crashed = crash_copy(data, tmp_path / "crashed")
    engine.close()
    result = run("process-crash", crashed)
    assert result.status == "succeeded", result.to_json()  # type: ignore[attr-defined]
    restart = next(step for step in result.steps if step.id == "restart")  # type: ignore[attr-defined]
    assert "replayed 1 WAL record" in restart.summary
    with open_engine(crashed) as reopened:
        assert reopened.get(b"k0099") == b"v"


def test_disk_space_moves_old_quarantine_to_another_volume_never_deletes(tmp_path: Path) -> None:
    data = fill(tmp_path / "db", count=100)
    old = data / QUARANTINE_DIR / "20250101T000000Z-old"
    old.mkdir(parents=True)
    (old / "evidence.bin").write_bytes(b"x" * 5000)
    volume = tmp_path / "quarantine-volume"
    volume.mkdir()
    result = run("disk-space", data, assume_yes=True, params={"quarantine_volume": str(volume)})
    assert result.status == "succeeded", result.to_json()  # type: ignore[attr-defined]
    assert (volume / "db" / "20250101T000000Z-old" / "evidence.bin").read_bytes() == b"x" * 5000
    assert not old.exists()
    breakdown = next(step for step in result.steps if step.id == "breakdown")  # type: ignore[attr-defined]
    assert "quarantine holds" in breakdown.summary and "frees no space" in breakdown.summary


def test_memory_recovery_switches_to_the_low_memory_profile(tmp_path: Path) -> None:
    data = fill(tmp_path / "db", count=50)
    unconfirmed = run("memory-recovery", data, params={"force_low_memory": "yes"})
    # stopping the process that holds the excess memory is a confirmed step, even when none will be found
    assert unconfirmed.status == "refused" and "stop-culprit" in unconfirmed.message  # type: ignore[attr-defined]
    assert json.loads((data / "drconsole.json").read_text())["options"].get("low_memory") is not True
    result = run("memory-recovery", data, params={"force_low_memory": "yes"}, assume_yes=True)
    assert result.status == "succeeded", result.to_json()  # type: ignore[attr-defined]
    marker = json.loads((data / "drconsole.json").read_text())
    assert marker["options"]["low_memory"] is True
    assert (data / QUARANTINE_DIR / f"run-{result.run_id}" / "drconsole.json.before-low-memory").exists()  # type: ignore[attr-defined]


def test_backups_restore_pitr_accidental_deletion_and_drill(tmp_path: Path) -> None:
    import time

    from engines.backup import iso_utc

    data = fill(tmp_path / "db", count=500)
    repo = tmp_path / "repo"
    assert run("backup-full", data, params={"repo": str(repo)}).status == "succeeded"  # type: ignore[attr-defined]
    with open_engine(data) as engine:
        engine.write_batch([(b"late%03d" % i, b"x") for i in range(50)])
    time.sleep(0.05)
    before_deletion = iso_utc(time.time_ns())
    time.sleep(0.05)
    with open_engine(data) as engine:
        engine.write_batch([(b"key%06d" % i, None) for i in range(100, 200)])  # the accident
    assert run("backup-incremental", data, params={"repo": str(repo)}).status == "succeeded"  # type: ignore[attr-defined]
    result = run("accidental-deletion", data, params={"repo": str(repo), "until": before_deletion})
    assert result.status == "succeeded", result.to_json()  # type: ignore[attr-defined]
    with open_engine(data) as engine:
        assert engine.get(b"key000150") == b"value-000150" * 4
        assert engine.get(b"late010") == b"x"
    pitr = run("pitr", data, params={"repo": str(repo), "until": before_deletion})
    assert pitr.status == "succeeded", pitr.to_json()  # type: ignore[attr-defined]
    drill = run("dr-drill", data, params={"repo": str(repo)})
    assert drill.status == "succeeded", [(s.id, s.status, s.summary) for s in drill.steps]  # type: ignore[attr-defined]
    measure = next(step for step in drill.steps if step.id == "measure")  # type: ignore[attr-defined]
    assert "RTO" in measure.summary and "RPO" in measure.summary
    # Total loss of the data dir: restore brings it back.
    lost = tmp_path / "lost-db"
    data.rename(lost)
    restored = run("restore", data, assume_yes=True, params={"repo": str(repo)})
    assert restored.status == "succeeded", restored.to_json()  # type: ignore[attr-defined]
    with open_engine(data) as engine:
        assert engine.get(b"key000001") == b"value-000001" * 4


def test_ransomware_restores_from_the_backup_and_keeps_the_encrypted_dir(tmp_path: Path) -> None:
    data = fill(tmp_path / "db", count=200)
    repo = tmp_path / "repo"
    assert run("backup-full", data, params={"repo": str(repo)}).status == "succeeded"  # type: ignore[attr-defined]
    for table in (data / "rocksdb").glob("*.sst"):
        table.rename(table.with_name(table.name + ".locked"))
    (data / "HOW_TO_DECRYPT.txt").write_text("pay us", encoding="utf-8")
    result = run("ransomware", data, assume_yes=True, params={"repo": str(repo)})
    assert result.status == "succeeded", result.to_json()  # type: ignore[attr-defined]
    with open_engine(data) as engine:
        assert engine.get(b"key000001") == b"value-000001" * 4
    evidence = list((tmp_path / QUARANTINE_DIR).glob("pre-restore-*-db"))
    assert evidence and (evidence[0] / "HOW_TO_DECRYPT.txt").exists()


def test_data_salvage_only_reads_the_damaged_dir(tmp_path: Path) -> None:
    data = fill(tmp_path / "db")
    corrupt_rocksdb_table(data)
    before = tree_state(data)
    result = run("data-salvage", data)
    assert result.status == "succeeded", result.to_json()  # type: ignore[attr-defined]
    assert tree_state(data) == before
    salvaged = StateDir().run_dir(result.run_id) / "salvaged"  # type: ignore[attr-defined]
    with open_engine(salvaged) as engine:
        assert engine.verify().ok
        assert engine.get(b"after-flush") is not None
    assert Path(str(salvaged) + ".jsonl").exists()


@pytest.mark.parametrize(
    "playbook,params",
    [
        ("emergency-shutdown", {}),
        ("cache-corruption", {}),
        ("post-recovery-validation", {}),
        ("verify-recovery", {"level": "quick"}),
        ("verify-recovery", {"level": "full"}),
        ("verify-recovery", {"level": "smoke"}),
        ("emergency-response", {}),
        ("wal-replay", {}),
    ],
)
def test_routine_playbooks_succeed_on_a_healthy_dir(tmp_path: Path, playbook: str, params: dict[str, str]) -> None:
    data = fill(tmp_path / "db", count=200)
    result = run(playbook, data, params=params, assume_yes=True)
    assert result.status == "succeeded", result.to_json()  # type: ignore[attr-defined]
    with open_engine(data) as engine:
        assert engine.verify().ok
        assert sum(1 for _ in engine.scan()) == 201  # the smoke tests left no probe key behind
    if playbook == "post-recovery-validation":
        report = StateDir().run_dir(result.run_id) / "recovery-validation-report.txt"  # type: ignore[attr-defined]
        assert "integrity: PASSED" in report.read_text() and "load: PASSED" in report.read_text()
    if playbook == "verify-recovery":
        journal = read_journal(Path(result.journal))  # type: ignore[attr-defined]
        messages = [record["message"] for record in journal.logs]
        assert any(message.startswith("Total Checks: ") for message in messages)
        assert "RESULT: ALL CHECKS PASSED" in messages


HOLDER = Path(__file__).resolve().parents[1] / "drills" / "lock_holder.py"


@pytest.fixture
def silent_holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A process holding an lsm data dir (200 acked keys) that never answers its /health: a deadlock."""
    data = tmp_path / "db"
    with create_engine(data, backend="lsm", durability="sync") as engine:
        for number in range(200):
            engine.put(b"k%04d" % number, b"v%04d" % number)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    process = subprocess.Popen(
        [sys.executable, str(HOLDER), str(data), "silent"], stdout=subprocess.PIPE, text=True, env=env
    )
    assert process.stdout is not None and process.stdout.readline().startswith("ready")
    yield process, data
    if process.poll() is None:
        process.kill()
    process.wait()


def test_a_hang_that_resume_does_not_cure_is_killed_audited_and_the_wal_replayed(
    silent_holder: tuple[subprocess.Popen[str], Path],
) -> None:
    process, data = silent_holder
    # The hung process holds the lock, so no safety copy can be taken: the kill is refused, nothing done.
    first = run("process-hang", data, assume_yes=True, params={"hang_deadline_seconds": "1"})
    assert first.status in ("failed", "refused") and "safety copy" in first.message  # type: ignore[attr-defined]
    assert process.poll() is None
    # Not confirmed: refused before any signal beyond the harmless SIGCONT.
    unconfirmed = run("process-hang", data, params={"hang_deadline_seconds": "1"}, waive_safety_copy="test")
    assert unconfirmed.status == "refused" and process.poll() is None  # type: ignore[attr-defined]
    result = run(
        "process-hang",
        data,
        assume_yes=True,
        params={"hang_deadline_seconds": "1"},
        waive_safety_copy="the hung holder keeps the lock; a kill changes no data file",
    )
    assert result.status == "succeeded", result.to_json()  # type: ignore[attr-defined]
    assert process.wait(timeout=10) == -signal.SIGKILL
    steps = {step.id: step.status for step in result.steps}  # type: ignore[attr-defined]
    assert steps["resume"] == "succeeded" and steps["kill"] == "succeeded" and steps["restart"] == "succeeded"
    entries = AuditLog(StateDir().audit_log).entries()
    assert ("process.kill_hung", "succeeded") in [(entry["action"], entry["outcome"]) for entry in entries]
    assert any(entry["action"] == "safety_copy.waived" for entry in entries)
    with open_engine(data, mode="ro") as engine:
        assert [engine.get(b"k%04d" % number) for number in range(200)] == [b"v%04d" % n for n in range(200)]
