"""Durability modes through the engine contract, on every backend.

``sync``: a write returns only once fsynced, and concurrent writers share fsyncs (group commit).
``async``: writes reach the disk within the flush interval.
A crash is a crash-consistent copy of the open data dir (what SIGKILL would leave).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from support import crash_copy

from engines import create_engine, open_engine


def test_sync_group_commit_keeps_every_acknowledged_write(tmp_path: Path, backend: str) -> None:
    engine = create_engine(tmp_path / "db", backend=backend, durability="sync")
    acknowledged: list[bytes] = []
    lock = threading.Lock()

    def writer(number: int) -> None:
        for i in range(150):
            key = b"w%02d-%04d" % (number, i)
            engine.put(key, key * 3)
            with lock:
                acknowledged.append(key)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fsyncs = engine._wal.fsync_count  # type: ignore[union-attr]
    copy = crash_copy(tmp_path / "db", tmp_path / "crashed")
    engine.close()
    assert len(acknowledged) == 16 * 150
    assert fsyncs < len(acknowledged)  # writers shared fsyncs
    with open_engine(copy, mode="ro") as recovered:
        for key in acknowledged:
            assert recovered.get(key) == key * 3


def test_async_writes_reach_disk_within_the_interval(tmp_path: Path, backend: str) -> None:
    engine = create_engine(tmp_path / "db", backend=backend, durability="async", async_interval_ms=10)
    for i in range(500):
        engine.put(b"a%04d" % i, b"v%d" % i)
    time.sleep(0.3)  # thirty flush intervals
    copy = crash_copy(tmp_path / "db", tmp_path / "crashed")
    engine.close()
    with open_engine(copy, mode="ro") as recovered:
        assert sum(1 for _ in recovered.scan()) == 500
        assert recovered.get(b"a0499") == b"v499"


def test_reopen_keeps_lsns_increasing(tmp_path: Path, backend: str) -> None:
    with create_engine(tmp_path / "db", backend=backend) as engine:
        first = engine.put(b"k", b"1")
        engine.flush()
        second = engine.put(b"k", b"2")
    with open_engine(tmp_path / "db") as engine:
        assert engine.last_lsn == second > first
        assert engine.put(b"k", b"3") == second + 1
        assert engine.get(b"k") == b"3"
