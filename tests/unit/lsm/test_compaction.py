"""Choosing and running compactions on real tables: scores, merging, tombstones, disk space, damage."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from lsm_unit_kit import flip, write_table

from engines.errors import CorruptionError, DiskFullError
from engines.lsm import compaction
from engines.lsm.compaction import CompactionAborted, full_compaction, level_compaction, pick_compaction, run_compaction
from engines.lsm.merge import live_rows, merge_chunks
from engines.lsm.settings import LsmSettings
from engines.lsm.sstable_reader import open_table
from engines.lsm.version import Version, sort_level

SETTINGS = LsmSettings(
    memtable_bytes=4096,
    levels=4,
    l0_trigger=2,
    level_multiplier=4,
    level_base_bytes=8192,
    target_file_bytes=6000,
    block_bytes=512,
    compression="none",
)


class Numbers:
    def __init__(self, start: int) -> None:
        self.next = start
        self.released: list[int] = []

    def allocate(self) -> int:
        self.next += 1
        return self.next - 1

    def release(self, number: int) -> None:
        self.released.append(number)


def build(tmp_path: Path, layout: list[list[tuple[int, dict]]]) -> Version:
    levels = []
    for level, tables in enumerate(layout):
        readers = []
        for number, entries in tables:
            write_table(tmp_path, number, entries, level=level, min_lsn=number * 10, max_lsn=number * 10 + 9)
            readers.append(open_table(tmp_path, number))
        levels.append(sort_level(level, readers))
    return Version(levels)


def contents(version_or_tables) -> list[tuple[bytes, bytes]]:
    tables = version_or_tables.tables() if isinstance(version_or_tables, Version) else version_or_tables
    ordered = sorted(tables, key=lambda t: (t.meta.level, -t.meta.max_lsn))
    return list(live_rows(merge_chunks([t.chunks(None, None) for t in ordered])))


def run(tmp_path: Path, job, numbers: Numbers, **kwargs):
    return run_compaction(
        job, data_dir=tmp_path, settings=SETTINGS, allocate=numbers.allocate, release=numbers.release, **kwargs
    )


def test_scores_pick_l0_by_count_and_deeper_levels_by_size(tmp_path: Path) -> None:
    small = {b"a%03d" % i: b"v" for i in range(10)}
    version = build(tmp_path, [[(1, small)], [], [], []])
    assert pick_compaction(version, SETTINGS, {}) is None  # one L0 table, trigger 2
    version = build(tmp_path, [[(1, small), (2, small)], [], [], []])
    job = pick_compaction(version, SETTINGS, {})
    assert job is not None and (job.level, job.output_level) == (0, 1) and len(job.inputs) == 2
    big = {b"b%05d" % i: b"x" * 100 for i in range(200)}  # ~25 KB > 8 KB target of L1
    version = build(tmp_path, [[], [(3, big)], [(4, {b"b00001": b"old"})], []])
    job = pick_compaction(version, SETTINGS, {})
    assert job is not None and (job.level, job.output_level) == (1, 2)
    assert {t.meta.number for t in job.inputs} == {3, 4}


def test_compaction_merges_newest_wins_and_keeps_tombstones_above_data(tmp_path: Path) -> None:
    newer = {b"k%03d" % i: (None if i % 3 == 0 else b"new%d" % i) for i in range(0, 60, 2)}
    older = {b"k%03d" % i: b"old%d" % i for i in range(60)}
    deeper = {b"k%03d" % i: b"deep%d" % i for i in range(0, 60, 5)}
    version = build(tmp_path, [[(2, newer), (1, older)], [], [(3, deeper)], []])
    before = contents(version)
    job = level_compaction(version, 0)
    assert job is not None and not job.drop_tombstones  # level 2 still holds these keys
    result = run(tmp_path, job, Numbers(10))
    assert result.outputs and all(meta.level == 1 for meta in result.outputs)
    outputs = [open_table(tmp_path, meta.number) for meta in result.outputs]
    assert sum(meta.tombstones for meta in result.outputs) == sum(1 for v in newer.values() if v is None)
    assert contents(outputs + version.levels[2]) == before
    lineage = [meta.lineage for meta in result.outputs]
    assert all(item["inputs"] == [1, 2] for item in lineage)
    assert [item["output"] for item in lineage] == list(range(len(lineage)))
    assert [item["last"] for item in lineage] == [False] * (len(lineage) - 1) + [True]
    assert result.entries_out == 60


def test_bottom_level_output_drops_tombstones_and_splits_by_size(tmp_path: Path) -> None:
    data = {b"k%04d" % i: (None if i % 4 == 0 else b"x" * 60) for i in range(400)}
    version = build(tmp_path, [[(1, data)], [], [], []])
    job = full_compaction(version)
    assert job is not None and job.drop_tombstones and job.output_level == 3
    result = run(tmp_path, job, Numbers(5))
    assert sum(meta.tombstones for meta in result.outputs) == 0
    assert result.dropped_tombstones == 100
    assert len(result.outputs) > 2  # 6000-byte target files
    outputs = [open_table(tmp_path, meta.number) for meta in result.outputs]
    assert contents(outputs) == sorted((k, v) for k, v in data.items() if v is not None)
    keys = [(meta.min_key, meta.max_key) for meta in result.outputs]
    assert all(high < low for (_, high), (low, _) in zip(keys, keys[1:]))  # non-overlapping, in order


def test_full_compaction_has_nothing_to_do_on_a_clean_bottom_level(tmp_path: Path) -> None:
    version = build(tmp_path, [[], [], [], [(1, {b"a": b"1"})]])
    assert full_compaction(version) is None


def test_not_enough_free_space_refuses_before_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = {b"k%04d" % i: b"x" * 50 for i in range(300)}
    version = build(tmp_path, [[(1, data), (2, data)], [], [], []])
    monkeypatch.setattr(compaction, "free_bytes", lambda path: 1000)
    before = sorted(p.name for p in (tmp_path / "sstables").iterdir())
    with pytest.raises(DiskFullError, match="free space"):
        run(tmp_path, level_compaction(version, 0), Numbers(10))
    assert sorted(p.name for p in (tmp_path / "sstables").iterdir()) == before


def test_a_corrupt_input_stops_the_compaction_and_removes_partial_output(tmp_path: Path) -> None:
    first = {b"a%04d" % i: b"x" * 50 for i in range(300)}
    second = {b"b%04d" % i: b"y" * 50 for i in range(300)}
    write_table(tmp_path, 1, first)
    write_table(tmp_path, 2, second)
    reader = open_table(tmp_path, 2)
    flip(tmp_path / "sstables" / "000002.sst", reader.offsets[-1] + 3)
    version = Version([[open_table(tmp_path, 2), open_table(tmp_path, 1)], [], [], []])
    numbers = Numbers(10)
    with pytest.raises(CorruptionError) as caught:
        run(tmp_path, level_compaction(version, 0), numbers)
    assert caught.value.file == "sstables/000002.sst"
    assert sorted(p.name for p in (tmp_path / "sstables").iterdir()) == ["000001.sst", "000002.sst"]
    assert numbers.released  # the numbers it took are given back


def test_an_abort_stops_between_chunks(tmp_path: Path) -> None:
    version = build(tmp_path, [[(1, {b"k%04d" % i: b"v" * 30 for i in range(500)})], [], [], []])
    abort = threading.Event()
    abort.set()
    with pytest.raises(CompactionAborted):
        run(tmp_path, level_compaction(version, 0), Numbers(10), abort=abort)
    assert sorted(p.name for p in (tmp_path / "sstables").iterdir()) == ["000001.sst"]
