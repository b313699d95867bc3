"""Continuous WAL archiving is idempotent, crash-safe, refuses a diverged history, and survives a full disk."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from backup_support import assert_error, backup_dirs, cli, export, tree_hash

from engines import create_engine, open_engine
from engines.backup import (
    ArchiveConflictError,
    Repository,
    WalArchive,
    attach_archiver,
    create_backup,
    restore_backup,
    verify_repository,
)
from engines.errors import DiskFullError


def _segments(data: Path) -> list[Path]:
    return sorted((data / "wal").glob("*.wal"))


def _filled(tmp_path: Path, rows: int = 3000) -> Path:
    data = tmp_path / "data"
    with create_engine(data, backend="rocksdb", durability="async", wal_segment_bytes=64 * 1024) as engine:
        for n in range(rows):
            engine.put(b"k%05d" % n, b"v" * 40)
    return data


def test_the_engine_archives_each_segment_before_recycling_it(tmp_path: Path) -> None:
    data, repo = tmp_path / "data", tmp_path / "repo"
    with create_engine(data, backend="rocksdb", durability="async", wal_segment_bytes=64 * 1024) as engine:
        archive = attach_archiver(engine, repo)
        for n in range(6000):
            engine.put(b"k%05d" % n, b"v" * 40)
            if n % 1500 == 0:
                engine.flush()  # the store covers the WAL: sealed segments are recycled
    names = [s.name for s in archive.segments()]
    remaining = {p.name for p in _segments(data)}
    # Every sealed segment is archived, the recycled ones and those kept for standbys alike;
    # the kept ones are marked .done, as PostgreSQL's archive_status marks them.
    assert len(names) > len(remaining) and remaining <= set(names)
    assert {p.name for p in (data / "wal" / "archive_status").iterdir()} == {f"{n}.done" for n in remaining}
    first, last = archive.segments()[0], archive.segments()[-1]
    assert last.last_lsn == 6000
    assert first.first_lsn == 1 and all(
        a.last_lsn + 1 == b.first_lsn for a, b in zip(archive.segments(), archive.segments()[1:])
    )
    assert last.problem is None and last.records > 0


def test_archiving_twice_is_a_no_op(tmp_path: Path) -> None:
    data, repo = _filled(tmp_path), tmp_path / "repo"
    archive = WalArchive(Repository.create(repo))
    added = archive.archive_sealed(data / "wal")
    assert added
    before = tree_hash(repo / "wal-archive")
    assert archive.archive_sealed(data / "wal") == []
    assert tree_hash(repo / "wal-archive") == before


def test_a_crash_mid_archive_is_healed_by_the_next_run(tmp_path: Path) -> None:
    data, repo = _filled(tmp_path), tmp_path / "repo"
    archive = WalArchive(Repository.create(repo))
    segment = _segments(data)[0]
    # A crash during the copy leaves a temp file; one after the rename leaves an unlisted segment.
    (repo / "wal-archive" / f".{segment.name}.tmp-99999").write_bytes(segment.read_bytes()[:100])
    shutil.copy(segment, repo / "wal-archive" / segment.name)
    assert verify_repository(str(repo)).wal is not None
    assert any(p.kind == "unlisted-segment" for p in verify_repository(str(repo)).problems)
    archived = archive.archive_segment(segment)
    assert archived is not None and archived.name in archive.manifest()
    assert verify_repository(str(repo)).ok
    sums = (repo / "wal-archive" / "SHA256SUMS").read_text()
    assert segment.name in sums


def test_a_different_segment_under_an_archived_name_is_refused(tmp_path: Path) -> None:
    data, repo = _filled(tmp_path), tmp_path / "repo"
    archive = WalArchive(Repository.create(repo))
    archive.archive_sealed(data / "wal")
    other = tmp_path / "other"
    with create_engine(other, backend="rocksdb", durability="async", wal_segment_bytes=64 * 1024) as engine:
        for n in range(3000):
            engine.put(b"x%05d" % n, b"w" * 40)
    with pytest.raises(ArchiveConflictError, match="different"):
        archive.archive_segment(_segments(other)[0])


def test_a_restored_dir_that_writes_on_archives_into_the_same_repository(tmp_path: Path) -> None:
    data, repo, restored = _filled(tmp_path), tmp_path / "repo", tmp_path / "restored"
    create_backup(repo, data_dir=data)
    restore_backup(repo, restored)
    with open_engine(restored, durability="async") as engine:
        attach_archiver(engine, repo)
        for n in range(3000):
            engine.put(b"later%05d" % n, b"z" * 40)
        engine.flush()
    incremental = create_backup(repo, data_dir=restored, incremental=True)
    assert incremental.lsn_end == 6000
    assert verify_repository(str(repo)).ok
    restore_backup(repo, tmp_path / "again")
    assert export(tmp_path / "again") == export(restored)


def test_writing_on_after_a_restore_to_an_earlier_point_is_a_conflict(tmp_path: Path, capsys) -> None:
    data, repo, restored = _filled(tmp_path, 600), tmp_path / "repo", tmp_path / "restored"
    create_backup(repo, data_dir=data)
    with open_engine(data, durability="async") as engine:
        attach_archiver(engine, repo)
        for n in range(3000):
            engine.put(b"y%05d" % n, b"y" * 40)
    create_backup(repo, data_dir=data, incremental=True)
    restore_backup(repo, restored, until_lsn=1000)
    with open_engine(restored, durability="async") as engine:
        engine.put(b"fork", b"another history")
    result = cli(capsys, "backup", "create", "--data-dir", restored, "--repo", repo, "--incremental")
    assert_error(result, 4, contains="diverged")


def test_a_full_repository_disk_fails_cleanly(tmp_path: Path, small_disk: Path, capsys) -> None:
    data = tmp_path / "data"
    with create_engine(data, backend="rocksdb", durability="async") as engine:
        engine.write_batch([(b"k%05d" % n, os.urandom(200)) for n in range(3000)])  # ~600 KB, incompressible
    repo = small_disk / "repo"
    result = cli(capsys, "backup", "create", "--data-dir", data, "--repo", repo, "--json")
    assert "no space left" in assert_error(result, 1).lower()
    assert json.loads(result.out)["kind"] == "DiskFullError"
    leftovers = [p for p in (repo / ".tmp").iterdir()] if (repo / ".tmp").exists() else []
    assert leftovers == []  # our partial checkpoint and archive are gone
    assert backup_dirs(repo) == {}
    with pytest.raises(DiskFullError):
        create_backup(repo, data_dir=data)
    assert export(data)  # the source is intact


BACKUP_CHILD = """
import sys, time
from engines.backup import create_backup

def progress(event):
    if event.phase == "pack" and event.done > 0 and not event.finished:
        print("stopped", flush=True)
        time.sleep(3600)

create_backup(sys.argv[1], data_dir=sys.argv[2], progress=progress)
"""


def test_kill_9_mid_backup_leaves_no_backup_and_the_next_run_clears_up(tmp_path: Path) -> None:
    import subprocess
    import sys

    data, repo = tmp_path / "data", tmp_path / "repo"
    with create_engine(data, backend="rocksdb", durability="async") as engine:
        engine.write_batch([(b"k%05d" % n, os.urandom(300)) for n in range(20000)])
    first = create_backup(repo, data_dir=data)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.Popen(
        [sys.executable, "-c", BACKUP_CHILD, str(repo), str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert child.stdout is not None and child.stderr is not None
    try:
        assert child.stdout.readline().strip() == b"stopped", child.stderr.read().decode(errors="replace")
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
        child.stderr.close()
    assert list(backup_dirs(repo)) == [first.backup_id]
    assert list((repo / ".tmp").iterdir())  # the killed run's partial backup and checkpoint
    assert verify_repository(str(repo)).ok  # invisible to verify and list
    second = create_backup(repo, data_dir=data)
    assert list((repo / ".tmp").iterdir()) == []
    assert set(backup_dirs(repo)) == {first.backup_id, second.backup_id}
    assert verify_repository(str(repo)).ok


def test_the_first_full_backup_skips_wal_that_no_base_backup_could_replay(tmp_path: Path) -> None:
    """Segments wholly before the first backup's checkpoint are not copied; later ones always are."""
    data, repo = _filled(tmp_path), tmp_path / "repo"
    sealed_before = [int(p.name[:20]) for p in _segments(data)]
    first = create_backup(repo, data_dir=data)
    archived = {s.name: s for s in WalArchive(Repository.create(repo)).segments()}
    # Only segments holding a record at or after the checkpoint's first WAL LSN were archived.
    assert all(s.last_lsn is None or s.last_lsn >= first.lsn_start for s in archived.values())
    skipped = [lsn for lsn in sealed_before if f"{lsn:020d}.wal" not in archived]
    assert skipped, "the data dir kept sealed segments the store covers; the first backup must skip them"
    report = verify_repository(str(repo))
    assert report.ok, report.problems
    # The skipped ones are .done (covered by the checkpoint); every segment sealed after the first
    # backup counts: a later backup, or the engine itself, archives it.
    covered = {f"{lsn:020d}.wal" for lsn in sealed_before}
    status = data / "wal" / "archive_status"
    assert {p.name for p in status.iterdir()} >= {f"{name}.done" for name in covered if (data / "wal" / name).exists()}
    with open_engine(data, durability="async") as engine:
        for n in range(3000, 4500):
            engine.put(b"k%05d" % n, b"w" * 40)
        sealed_now = {p.name for p in _segments(data)}
        second = create_backup(repo, engine=engine)
    names = {s.name for s in WalArchive(Repository.create(repo)).segments()}
    current = max(sealed_now)
    assert sealed_now - {current} - covered <= names, sealed_now - names
    assert verify_repository(str(repo)).ok
    restored = tmp_path / "restored"
    restore_backup(repo, restored, until_lsn=second.lsn_end)
    assert export(restored) == export(data)
