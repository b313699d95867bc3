"""Repair primitives: manifest rebuilt from the tables, one table quarantined, WAL replay to refill."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lsm_kit import create_lsm, fill, flip, tables, value_of

from engines import open_engine
from engines.errors import CorruptionError, LockedError, SafetyRefusal
from engines.lsm.engine import LsmEngine
from engines.lsm.repair import quarantine_sstable, rebuild_manifest

# Keep every WAL segment: the tests decide what the WAL still covers.
LAYERED = {
    "memtable_bytes": 16 * 1024,
    "l0_trigger": 2,
    "level_base_bytes": 32 * 1024,
    "level_multiplier": 3,
    "target_file_bytes": 16 * 1024,
    "block_bytes": 1024,
    "levels": 4,
    "compression": "none",
}

# Two flushes, two tables: one memtable never fills.
SIMPLE = {"memtable_bytes": 1 << 20, "block_bytes": 1024, "levels": 4}


def layered(path: Path, **options: object) -> dict[bytes, bytes]:
    """Data spread over several levels, with overwrites and deletions."""
    model: dict[bytes, bytes] = {}
    with create_lsm(path, LAYERED, **options) as engine:
        for round_number in range(4):
            for i in range(0, 1200, 1 + round_number):
                key = b"key%05d" % i
                engine.put(key, value_of(i + round_number))
                model[key] = value_of(i + round_number)
            for i in range(round_number, 1200, 17):
                engine.delete(b"key%05d" % i)
                model.pop(b"key%05d" % i, None)
            engine.flush()
        engine.wait_for_background()
        engine.put(b"key00001", b"newest")  # and one table in L0
        model[b"key00001"] = b"newest"
        engine.flush()
        levels = [level["files"] for level in engine.stats().details["levels"]]
        assert sum(1 for files in levels if files) >= 3, levels
    return model


def test_deleted_manifest_is_rebuilt_and_every_key_is_back(tmp_path: Path) -> None:
    data = tmp_path / "db"
    model = layered(data)
    (data / "manifest.json").unlink()
    report = LsmEngine.repair(data)
    assert report.ok and report.tables == []
    assert any("wrote manifest.json" in line for line in report.actions)
    with open_engine(data) as engine:
        assert dict(engine.scan()) == model
        assert engine.verify().ok


def test_manifest_that_is_not_json_goes_to_quarantine_and_is_rebuilt(tmp_path: Path) -> None:
    data = tmp_path / "db"
    model = layered(data)
    (data / "manifest.json").write_bytes(b"\x00garbage")
    with pytest.raises(CorruptionError):
        open_engine(data)
    report = rebuild_manifest(data)
    moved = [Path(p) for p in report.quarantined]
    assert [p.name for p in moved] == ["manifest.json"] and moved[0].read_bytes() == b"\x00garbage"
    with open_engine(data) as engine:
        assert dict(engine.scan()) == model


def test_rebuild_quarantines_a_corrupt_table_and_the_wal_brings_its_writes_back(tmp_path: Path) -> None:
    """The WAL still holds what the damaged table held: nothing is lost (before the fix the durable LSN
    stayed past the table's writes, the next open replayed none of them, and 200 keys were gone)."""
    data = tmp_path / "db"
    with create_lsm(data, SIMPLE) as engine:
        older = fill(engine, 200, prefix=b"a")
        engine.flush()
        newer = fill(engine, 200, prefix=b"b")
        engine.flush()
    first, second = tables(data)
    flip(first, 40)
    (data / "manifest.json").unlink()
    report = rebuild_manifest(data)
    assert [Path(t.file).name for t in report.tables] == [first.name]
    held = report.tables[0]
    assert (bytes.fromhex(held.min_key or ""), bytes.fromhex(held.max_key or "")) == (b"a000000", b"a000199")
    assert (held.min_lsn, held.max_lsn) == (1, 200)
    assert report.wal_covers and report.recovered_lsn_ranges == [(1, 200)]
    assert report.lost == [] and report.lost_lsn_ranges == [] and report.durable_lsn == 0
    assert Path(held.moved_to).exists() and not first.exists()  # the damaged file is kept, not deleted
    with open_engine(data) as engine:
        assert dict(engine.scan()) == {**older, **newer}
        assert engine.verify().ok


def test_a_corrupt_table_the_wal_no_longer_holds_keeps_its_sound_blocks(tmp_path: Path) -> None:
    """One damaged block of a table the WAL no longer covers: the table's other blocks are salvaged
    into a new table; only the damaged block's entries are lost, counted and named by key range
    (before, the whole table went: 3,000 keys for one 448-byte block in a console run)."""
    data = tmp_path / "db"
    with create_lsm(data, SIMPLE, wal_segment_bytes=64 * 1024, wal_keep_segments=1) as engine:
        older = fill(engine, 800, prefix=b"a")
        engine.flush()
        newer = fill(engine, 800, prefix=b"b")
        engine.flush()
    first = tables(data)[0]
    flip(first, 40)  # inside the first data block
    (data / "manifest.json").unlink()
    report = rebuild_manifest(data)
    assert not report.wal_covers and report.recovered_lsn_ranges == []
    [held] = report.tables
    assert held.salvaged_into is not None and (data / held.salvaged_into).exists()
    assert held.lost_entries is not None and 0 < held.lost_entries < 100
    assert held.salvaged_entries == 800 - held.lost_entries
    assert len(report.lost) == 1 and f"{held.lost_entries} of 800 entries" in report.lost[0]
    assert "LSNs 1..800" in report.lost[0] and held.lost_keys and held.lost_keys.startswith("[b'a000000'..")
    assert report.lost_lsn_ranges == [(1, 800)]
    assert Path(held.moved_to).exists()  # the damaged table itself is kept in quarantine
    with open_engine(data) as engine:
        found = dict(engine.scan())
        assert engine.verify().ok
    missing = sorted(set(older) - set(found))
    assert len(missing) == held.lost_entries and missing[0] == b"a000000"  # exactly the first block
    assert all(found[key] == value for key, value in {**older, **newer}.items() if key in found)
    assert all(key in found for key in newer)


def test_engine_repair_on_the_cli_leaves_every_key_the_wal_holds(tmp_path: Path) -> None:
    """The command an operator runs by hand: one corrupt SSTable, the WAL intact -> every key is back."""
    data = tmp_path / "db"
    with create_lsm(data, SIMPLE) as engine:
        model = fill(engine, 400, prefix=b"k")
        engine.flush()
    flip(tables(data)[0], 40)
    report = LsmEngine.repair(data)
    assert report.lost == [] and report.keys_after == 400
    with open_engine(data) as engine:
        assert dict(engine.scan()) == model


def test_quarantine_on_an_open_engine_and_refill_from_the_wal(tmp_path: Path) -> None:
    data = tmp_path / "db"
    with create_lsm(data, SIMPLE) as engine:
        older = fill(engine, 200, prefix=b"a")
        engine.flush()
        newer = fill(engine, 200, prefix=b"b")
        engine.flush()
        victim = tables(data)[0]
        report = quarantine_sstable(engine, victim.name)
        table = report.tables[0]
        assert table.file == f"sstables/{victim.name}"
        assert (table.min_lsn, table.max_lsn, table.entries) == (1, 200, 200)
        assert report.wal_covers is True and report.wal_first_lsn == 1
        assert report.lost_lsn_ranges == [(1, 200)]
        assert not victim.exists() and Path(table.moved_to).exists()
        assert engine.get(b"a000001") is None
        assert dict(engine.scan()) == newer
        assert engine.verify().ok
        assert engine.restore_from_wal(table.min_lsn or 1) == 400
        assert engine.restore_from_wal(engine.last_lsn + 1) == 0  # nothing after the end: nothing to do
        assert dict(engine.scan()) == older | newer
    with open_engine(data) as engine:
        assert dict(engine.scan()) == older | newer


def test_quarantine_by_path_needs_the_dir_free(tmp_path: Path) -> None:
    data = tmp_path / "db"
    with create_lsm(data, SIMPLE) as engine:
        fill(engine, 100, prefix=b"a")
        engine.flush()
        newer = fill(engine, 100, prefix=b"b")
        engine.flush()
        with pytest.raises(LockedError):
            quarantine_sstable(data, tables(data)[0].name)
    report = quarantine_sstable(data, "sstables/" + tables(data)[0].name)
    assert report.tables[0].min_key == b"a000000".hex()
    with open_engine(data) as engine:
        assert dict(engine.scan()) == newer
        assert engine.verify().ok


def test_rebuild_keeps_one_generation_when_compaction_inputs_survive(tmp_path: Path) -> None:
    """A crash after a compaction's manifest but before its inputs were deleted, then the manifest lost."""
    data = tmp_path / "db"
    with create_lsm(data, SIMPLE) as engine:
        fill(engine, 300)
        engine.flush()
        for i in range(0, 300, 2):
            engine.delete(b"key%06d" % i)  # tombstones the bottom-level compaction drops
        engine.flush()
        before = {path.name: path.read_bytes() for path in tables(data)}
        engine.compact()
        expected = dict(engine.scan())
    for name, raw in before.items():
        if not (data / "sstables" / name).exists():
            (data / "sstables" / name).write_bytes(raw)  # the superseded inputs are back on disk
    (data / "manifest.json").unlink()
    rebuild_manifest(data)
    with open_engine(data) as engine:
        assert dict(engine.scan()) == expected  # no deleted key resurrected, none lost
        assert engine.verify().ok


def test_rebuild_reports_writes_neither_in_tables_nor_in_the_wal(tmp_path: Path) -> None:
    data = tmp_path / "db"
    with create_lsm(data, SIMPLE, wal_segment_bytes=64 * 1024, wal_keep_segments=1) as engine:
        fill(engine, 800, prefix=b"a")
        engine.flush()
        newer = fill(engine, 800, prefix=b"b")
        engine.flush()
    newest = tables(data)[-1]
    shutil.move(str(newest), tmp_path / newest.name)
    (data / "manifest.json").unlink()
    report = rebuild_manifest(data)
    assert not report.ok and report.lost_lsn_ranges
    gap = report.lost_lsn_ranges[0]
    assert gap[0] == 801
    with open_engine(data) as engine:  # opens: the gap is reported, not hidden
        assert engine.get(b"a000001") == value_of(1)
        with pytest.raises(SafetyRefusal):  # the WAL cannot refill the gap: refuse, change nothing
            engine.restore_from_wal(gap[0])  # type: ignore[attr-defined]
    assert newer
