"""Each backend's scrub units on real files: a clean store passes, a flipped byte is found in its file,
reading is paced for the whole store, and a file a compaction retired proves nothing."""

from __future__ import annotations

import os
from pathlib import Path

from engines import create_engine
from engines.reports import Problem
from engines.scrub import Scrubber


def flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))


def filled(path: Path, backend: str):
    engine = create_engine(path, backend=backend, durability="async", wal_segment_bytes=256 * 1024)
    for index in range(6000):
        engine.put(f"key{index:06d}".encode(), os.urandom(60))
    engine.flush()
    return engine


def damage(path: Path, backend: str) -> str:
    """Flip a byte the engine will find; the file it is in, relative to the data dir."""
    if backend == "lsm":
        table = sorted((path / "sstables").glob("*.sst"))[-1]
        flip(table, 6000)
        return f"sstables/{table.name}"
    if backend == "rocksdb":
        table = sorted((path / "rocksdb").glob("*.sst"))[-1]
        flip(table, 300)
        return f"rocksdb/{table.name}"
    from engines.cow.page import DATA_FILE

    blob = (path / DATA_FILE).read_bytes()
    leaf = next(page for page in range(len(blob) // 4096 - 1, 2, -1) if blob[page * 4096 + 4] == 3)
    flip(path / DATA_FILE, leaf * 4096 + 100)
    return DATA_FILE


def test_clean_then_damaged(tmp_path: Path, backend: str) -> None:
    engine = filled(tmp_path / "d", backend)
    try:
        units = engine.scrub_units()
        files = {unit.file for unit in units}
        assert any(name.startswith("wal/") for name in files)  # the sealed WAL segments are cold files too
        found: list[Problem] = []
        scrubber = Scrubber(engine.scrub_units, interval=0, rate=0, on_problem=found.append)
        clean = scrubber.run_pass()
        assert clean.complete and not found and clean.checked == len(units)
        store = sum(unit.size for unit in units if not unit.file.startswith("wal/"))
        assert clean.bytes_read >= 0.5 * store  # every block was read (rocksdb counts keys and values)
        file = damage(tmp_path / "d", backend)
        if backend == "cow":
            engine._tree.cache.clear()  # type: ignore[attr-defined]  # irrelevant to the scrub: it reads the file
        damaged = scrubber.run_pass()
        assert damaged.complete and found and {problem.file for problem in found} == {file}, found
    finally:
        try:
            engine.close()
        except Exception:  # noqa: BLE001 - a damaged store may refuse its final flush
            pass


def test_a_table_retired_by_compaction_is_not_reported(tmp_path: Path) -> None:
    engine = filled(tmp_path / "d", "lsm")
    try:
        units = [unit for unit in engine.scrub_units() if unit.file.startswith("sstables/")]
        for index in range(6000):  # a second table, then a full compaction retires both
            engine.put(f"key{index:06d}".encode(), b"new")
        engine.compact()
        assert all(not unit.live() for unit in units)
        found: list[Problem] = []
        record = Scrubber(lambda: units, interval=0, rate=0, on_problem=found.append).run_pass()
        assert not found and record.skipped == len(units)
    finally:
        engine.close()


def test_rocksdb_overlapping_tables_are_read_once_per_pass(tmp_path: Path) -> None:
    engine = create_engine(tmp_path / "r", backend="rocksdb", durability="async")
    try:
        logical = 0
        # Three L0 tables, each spanning the whole key space: a fourth would reach RocksDB's L0
        # compaction trigger (4), and a compaction finishing during the pass changes the tables under it.
        for round_number in range(3):
            for index in range(2000):
                key, value = f"key{index * 3 + round_number:08d}".encode(), os.urandom(100)
                engine.put(key, value)
                logical += len(key) + len(value)
            engine.flush()
        units = [unit for unit in engine.scrub_units() if unit.file.startswith("rocksdb/")]
        assert len(units) >= 2
        record = Scrubber(lambda: units, interval=0, rate=0, on_problem=print).run_pass()
        assert record.complete and logical <= record.bytes_read <= logical * 1.01, (record.bytes_read, logical)
    finally:
        engine.close()
