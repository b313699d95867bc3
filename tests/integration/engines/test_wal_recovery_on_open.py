"""What an engine does on open with a damaged WAL, on every backend.

A torn tail (a crash mid-append) is cut into quarantine and the open succeeds; damage with sound
records after it is never cut silently: the open fails with the segment, offset and reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import crash_copy

from engines import create_engine, open_engine
from engines.errors import WalCorruptionError
from engines.wal import list_segments


def write_rows(path: Path, backend: str, count: int = 200) -> None:
    """Write rows, then leave ``path`` as SIGKILL would: the store does not cover the WAL."""
    source = path.with_name(path.name + "-live")
    with create_engine(source, backend=backend) as engine:
        for i in range(count):
            engine.put(b"k%04d" % i, b"v" * 50)
        crash_copy(source, path)


def test_torn_tail_is_quarantined_and_open_succeeds(tmp_path: Path, backend: str) -> None:
    data = tmp_path / "db"
    write_rows(data, backend)
    last = list_segments(data / "wal")[-1].path
    raw = last.read_bytes()
    last.write_bytes(raw[:-30])  # the last record is cut mid-way
    with open_engine(data) as engine:
        assert engine.get(b"k0198") == b"v" * 50
        assert engine.get(b"k0199") is None
        engine.put(b"after", b"ok")
    quarantined = list((data / ".quarantine").rglob("*"))
    assert any(path.is_file() for path in quarantined)
    with open_engine(data) as engine:
        assert engine.get(b"after") == b"ok"
        assert engine.verify().ok


def test_damage_before_sound_records_is_refused_and_nothing_moves(tmp_path: Path, backend: str) -> None:
    data = tmp_path / "db"
    write_rows(data, backend)
    last = list_segments(data / "wal")[-1].path
    raw = bytearray(last.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    last.write_bytes(bytes(raw))
    with pytest.raises(WalCorruptionError) as caught:
        open_engine(data)
    assert caught.value.segment == last.name
    assert not (data / ".quarantine").exists()
    assert last.read_bytes() == bytes(raw)


@pytest.mark.parametrize("mode", ["rw", "ro"])
def test_a_refused_open_releases_the_store(tmp_path: Path, backend: str, mode: str) -> None:
    """The failed engine is still referenced (by the exception), yet its store is closed: a second
    open in this process meets the same damage, not a lock the first one kept (RocksDB's LOCK),
    and the files are byte for byte as found."""
    data = tmp_path / "db"
    write_rows(data, backend)
    last = list_segments(data / "wal")[-1].path
    raw = bytearray(last.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    last.write_bytes(bytes(raw))

    # Ours to compare: every file but the lock files and RocksDB's own directory. Closing a RocksDB
    # that replay half filled flushes its memtable to a table (it did so before, when the leaked
    # handle was collected); rocksdb.state.json still names the LSN the store covered, so the next
    # open replays the same records again.
    def ours(path: Path) -> bool:
        return path.is_file() and path.name != "drconsole.lock" and "rocksdb" not in path.relative_to(data).parts[:1]

    before = {path: path.read_bytes() for path in data.rglob("*") if ours(path)}
    with pytest.raises(WalCorruptionError) as first:
        open_engine(data, mode=mode)
    with pytest.raises(WalCorruptionError) as second:
        open_engine(data, mode=mode)
    assert second.value.segment == first.value.segment == last.name
    after = {path: path.read_bytes() for path in data.rglob("*") if ours(path)}
    assert sorted(map(str, after.keys() - before.keys())) == [] and before.keys() <= after.keys()
    assert [str(path) for path in before if before[path] != after[path]] == []
