"""engines.reclaim on real data dirs: only WAL the store covers (and the archive holds), never the
newest segment, dead temp files only; the data reads back whole afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import backend_params

from engines import create_engine, open_engine
from engines.backup import attach_archiver
from engines.errors import LockedError
from engines.reclaim import find_reclaimable, reclaim
from engines.wal import archive_status
from engines.wal.segments import list_segments

VALUE = b"v" * 2000


def _write(engine: object, start: int, count: int) -> None:
    for number in range(start, start + count):
        engine.put(b"k%05d" % number, VALUE)  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", backend_params())
def test_covered_segments_kept_for_standbys_are_reclaimed_and_nothing_is_lost(tmp_path: Path, backend: str) -> None:
    data = tmp_path / "data"
    with create_engine(data, backend=backend, wal_segment_bytes=65536, wal_keep_segments=64) as engine:
        _write(engine, 0, 300)
        engine.flush()
    segments = list_segments(data / "wal")
    assert len(segments) >= 5
    found = find_reclaimable(data)
    assert [Path(item.path) for item in found] == [segment.path for segment in segments[:-1]]
    assert all(item.kind == "wal" and "covered by the store" in item.why for item in found)
    removed = reclaim(data)
    assert len(removed) == len(found)
    assert [segment.path for segment in list_segments(data / "wal")] == [segments[-1].path]  # the newest stays
    with open_engine(data, mode="rw") as engine:
        assert all(engine.get(b"k%05d" % number) == VALUE for number in range(300))
        engine.put(b"after", b"reclaim")


def test_segments_the_store_does_not_cover_stay_and_a_held_data_dir_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    engine = create_engine(data, backend="lsm", wal_segment_bytes=65536, wal_keep_segments=64)
    try:
        _write(engine, 0, 100)
        engine.flush()
        covered = engine.durable_lsn
        _write(engine, 100, 200)  # sealed segments past the store's durable LSN (lsm: in the memtable)
        found = find_reclaimable(data)
        assert found, "the flushed part should be reclaimable"
        segments = {segment.path: segment for segment in list_segments(data / "wal")}
        ordered = sorted(segments.values(), key=lambda segment: segment.first_lsn)
        for item in found:
            index = ordered.index(segments[Path(item.path)])
            assert ordered[index + 1].first_lsn - 1 <= covered  # wholly covered, never past it
        assert len(found) < len(ordered) - 2
        with pytest.raises(LockedError):
            reclaim(data)  # the node (here: this engine) holds it and recycles its WAL itself
        assert all(Path(item.path).exists() for item in found)
    finally:
        engine.close()


def test_with_a_repository_recorded_only_archived_segments_are_reclaimable(tmp_path: Path) -> None:
    data, repo = tmp_path / "data", tmp_path / "repo"
    with create_engine(data, backend="lsm", wal_segment_bytes=65536, wal_keep_segments=64) as engine:
        attach_archiver(engine, repo)
        _write(engine, 0, 150)
        engine.flush()  # archives the sealed segments (.done)
        archived = set(archive_status.statuses(data / "wal"))
        shutil.move(repo, tmp_path / "repo-unplugged")  # the archive volume goes away
        _write(engine, 150, 150)
        engine.flush()  # covered now, but cannot be archived: held
    found = {Path(item.path).name for item in find_reclaimable(data)}
    assert found and found <= {name for name, kind in archive_status.statuses(data / "wal").items() if kind == "done"}
    held = [s.path.name for s in list_segments(data / "wal")[:-1] if s.path.name not in found]
    assert held, "segments not in the archive must stay"
    assert found <= archived | {name for name, kind in archive_status.statuses(data / "wal").items() if kind == "done"}
    reclaim(data)
    assert all((data / "wal" / name).exists() for name in held)
    with open_engine(data) as engine:
        assert all(engine.get(b"k%05d" % number) == VALUE for number in range(300))


def test_only_temp_files_of_dead_processes_are_reclaimed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with create_engine(data, backend="lsm") as engine:
        engine.put(b"k", b"v")
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = data / f".manifest.json.tmp-{done.stdout.strip()}"
    dead.write_bytes(b"x" * 1000)
    alive = data / f".manifest.json.tmp-{os.getpid()}"
    alive.write_bytes(b"y" * 1000)
    quarantined = data / ".quarantine" / "old"
    quarantined.mkdir(parents=True)
    (quarantined / f".x.tmp-{done.stdout.strip()}").write_bytes(b"q")  # quarantine is never deleted
    removed = reclaim(data)
    assert [Path(item.path) for item in removed] == [dead]
    assert alive.exists() and (quarantined / f".x.tmp-{done.stdout.strip()}").exists()
    with open_engine(data) as engine:
        assert engine.get(b"k") == b"v"
