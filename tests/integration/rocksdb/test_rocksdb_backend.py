"""The RocksDB backend on real directories: read-only opens, corruption, repair, checkpoints, locks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from engines import create_engine, open_engine
from engines.errors import CorruptionError, LockedError, NotFoundError, ReadOnlyError
from engines.rocksdb.engine import RocksEngine

from support import crash_copy


def tree_state(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``root`` with its size, mtime and content hash."""
    state = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            state[str(path.relative_to(root))] = (len(data), path.stat().st_mtime_ns, hashlib.sha256(data).hexdigest())
    return state


def fill(path: Path, count: int = 3000) -> None:
    with create_engine(path, backend="rocksdb") as engine:
        engine.write_batch([(b"key%06d" % i, b"value-%06d" % i * 4) for i in range(count)])
        engine.flush()
        engine.put(b"after-flush", b"only in the WAL until the next flush")


def test_read_only_open_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "db"
    fill(data)
    # Leave WAL records the store does not cover, so the read-only open must replay them.
    engine = open_engine(data)
    engine.put(b"late", b"in the WAL only")
    engine._wal.flush()  # type: ignore[union-attr]
    crashed = crash_copy(data, tmp_path / "crashed")  # as a SIGKILL would leave it
    engine.close()
    before = tree_state(crashed)
    with open_engine(crashed, mode="ro") as reader:
        assert reader.get(b"late") == b"in the WAL only"
        assert reader.get(b"key000010") == b"value-000010" * 4
        assert dict(reader.scan(prefix=b"lat")) == {b"late": b"in the WAL only"}
        assert reader.verify().ok
        with pytest.raises(ReadOnlyError):
            reader.put(b"x", b"y")
    assert tree_state(crashed) == before


def corrupt_one_table(data: Path) -> Path:
    tables = sorted((data / "rocksdb").glob("*.sst"))
    assert tables
    table = tables[0]
    raw = bytearray(table.read_bytes())
    raw[100] ^= 0xFF
    table.write_bytes(bytes(raw))
    return table


def test_corrupt_table_is_found_by_verify_and_reads_raise(tmp_path: Path) -> None:
    data = tmp_path / "db"
    fill(data)
    table = corrupt_one_table(data)
    with open_engine(data, mode="ro") as engine:
        report = engine.verify()
        assert not report.ok
        problem = report.problems[0]
        assert problem.kind == "checksum"
        assert problem.file == f"rocksdb/{table.name}"
        with pytest.raises(CorruptionError):
            list(engine.scan())


def test_repair_keeps_a_safety_copy_and_reports_what_it_dropped(tmp_path: Path) -> None:
    data = tmp_path / "db"
    fill(data)
    table = corrupt_one_table(data)
    report = RocksEngine.repair(data)
    assert report.safety_copy is not None
    safety = Path(report.safety_copy)
    assert (safety / table.name).exists()  # the damaged table is kept, not deleted
    assert report.actions
    # The WAL reaches back to LSN 1, so nothing the dropped table held is lost: the report says
    # so (the table stays in quarantine) and counts the keys the data dir really has.
    assert report.lost == [] and report.recovered_lsn_ranges and report.recovered_lsn_ranges[0][0] == 1
    with open_engine(data) as engine:
        assert report.keys_after == engine.stats().total_keys > 0
        # The whole WAL is replayed after a repair, so every key written through drconsole is back.
        assert engine.get(b"key000001") == b"value-000001" * 4
        assert engine.get(b"after-flush") is not None
        assert engine.verify().ok


def test_checkpoint_is_an_openable_consistent_copy(tmp_path: Path) -> None:
    data = tmp_path / "db"
    fill(data, 500)
    with open_engine(data) as engine:
        lsn = engine.checkpoint(tmp_path / "copy")
        engine.put(b"after-checkpoint", b"x")
    with open_engine(tmp_path / "copy") as copy:
        assert copy.last_lsn == lsn
        assert copy.get(b"after-flush") is not None
        assert copy.get(b"after-checkpoint") is None
        assert sum(1 for _ in copy.scan()) == 501


def test_second_writer_is_refused_and_missing_store_is_named(tmp_path: Path) -> None:
    data = tmp_path / "db"
    fill(data, 10)
    with open_engine(data):
        with pytest.raises(LockedError):
            open_engine(data)
        with open_engine(data, mode="ro") as reader:  # readers may look while a writer works
            assert reader.get(b"key000001") is not None
    (data / "rocksdb" / "CURRENT").rename(tmp_path / "CURRENT.aside")
    with pytest.raises(NotFoundError) as caught:
        open_engine(data)
    assert "CURRENT" in str(caught.value)


def test_state_file_lost_replays_the_whole_wal(tmp_path: Path) -> None:
    data = tmp_path / "db"
    fill(data, 100)
    (data / "rocksdb.state.json").unlink()
    with open_engine(data) as engine:
        assert sum(1 for _ in engine.scan()) == 101
        assert engine.get(b"after-flush") is not None
