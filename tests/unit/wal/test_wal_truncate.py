"""Truncation at the first bad record: nothing is deleted, the kept prefix is sound, twice is once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from wal_testkit import Placed, flip_byte, lsns, write_log

from engines.errors import WalCorruptionError
from engines.wal import Op, WalReader, WalWriter, list_segments, truncate_at_first_bad


@pytest.fixture
def log(tmp_path: Path) -> tuple[Path, list[Placed]]:
    wal = tmp_path / "data" / "wal"
    placed = write_log(wal, [200, 3000, 40_000, 10, 700] * 12, segment_bytes=64 * 1024, seed=3)
    assert len(list_segments(wal)) >= 4
    return wal, placed


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_truncate_moves_the_tail_and_later_segments(log: tuple[Path, list[Placed]], tmp_path: Path) -> None:
    wal, placed = log
    segments = list_segments(wal)
    damaged = segments[1].path
    victim = [p for p in placed if p.segment == damaged.name][2]
    flip_byte(damaged, victim.start + 20, 0x10)
    original = _snapshot(wal)
    quarantine = tmp_path / "data" / ".quarantine" / "cut"

    report = truncate_at_first_bad(wal, quarantine)

    assert (report.segment, report.offset, report.quarantine) == (damaged.name, victim.start, quarantine)
    tail = quarantine / f"{damaged.name}.tail-at-{victim.start}"
    assert tail.read_bytes() == original[damaged.name][victim.start :]  # byte for byte
    assert damaged.read_bytes() == original[damaged.name][: victim.start]
    later = [info.path.name for info in segments[2:]]
    for name in later:
        assert not (wal / name).exists()
        assert (quarantine / name).read_bytes() == original[name]  # moved, not deleted
    assert sorted(report.moved) == sorted([tail] + [quarantine / name for name in later])
    assert report.bytes_moved == sum(len(original[name]) for name in later) + len(original[damaged.name]) - victim.start
    # Every original byte is still somewhere.
    assert sum(path.stat().st_size for path in wal.iterdir()) + report.bytes_moved == sum(map(len, original.values()))

    kept = [
        p.record.lsn
        for p in placed
        if p.segment < damaged.name or (p.segment == damaged.name and p.start < victim.start)
    ]
    validation = WalReader(wal).validate()
    assert validation.ok and validation.records == len(kept) == report.records_kept
    assert validation.last_lsn == kept[-1] == report.last_lsn
    assert lsns(WalReader(wal).records(mode="absolute_consistency")) == kept

    # Twice is a no-op.
    before = (_snapshot(wal), _snapshot(quarantine))
    again = truncate_at_first_bad(wal, quarantine)
    assert (again.segment, again.offset, again.quarantine, again.moved, again.bytes_moved) == (None, None, None, [], 0)
    assert again.records_kept == len(kept)
    assert (_snapshot(wal), _snapshot(quarantine)) == before

    # And the log goes on from where it was cut.
    with WalWriter(wal, next_lsn=report.last_lsn + 1) as writer:  # type: ignore[operator]
        writer.append(Op.PUT, b"after", b"cut")
    assert WalReader(wal).validate().ok


def test_problem_at_offset_zero_moves_the_whole_segment(log: tuple[Path, list[Placed]], tmp_path: Path) -> None:
    wal, placed = log
    segments = list_segments(wal)
    shutil.move(segments[1].path, tmp_path / "lost.wal")  # a deleted middle segment: a gap at offset 0
    original = _snapshot(wal)
    quarantine = tmp_path / "q"
    report = truncate_at_first_bad(wal, quarantine)
    assert (report.segment, report.offset) == (segments[2].path.name, 0)
    assert [info.path.name for info in list_segments(wal)] == [segments[0].path.name]
    assert _snapshot(quarantine) == {name: data for name, data in original.items() if name != segments[0].path.name}
    assert report.last_lsn == segments[1].first_lsn - 1 and WalReader(wal).validate().ok


def test_torn_tail_of_the_last_segment(log: tuple[Path, list[Placed]], tmp_path: Path) -> None:
    wal, placed = log
    last = list_segments(wal)[-1].path
    data = last.read_bytes()
    last.write_bytes(data[:-5])
    report = truncate_at_first_bad(wal, tmp_path / "q")
    assert report.segment == last.name and report.offset == placed[-1].start
    assert [path.read_bytes() for path in (tmp_path / "q").iterdir()] == [data[placed[-1].start : -5]]
    assert WalReader(wal).validate().last_lsn == placed[-2].record.lsn


def test_quarantine_never_overwrites(log: tuple[Path, list[Placed]], tmp_path: Path) -> None:
    wal, placed = log
    last = list_segments(wal)[-1].path
    quarantine = tmp_path / "q"
    quarantine.mkdir()
    clash = quarantine / f"{last.name}.tail-at-{placed[-1].start}"
    clash.write_bytes(b"an earlier cut")
    flip_byte(last, placed[-1].start + 30, 1)
    report = truncate_at_first_bad(wal, quarantine)
    assert clash.read_bytes() == b"an earlier cut"
    assert report.moved == [quarantine / f"{clash.name}.1"]


def test_garbage_segment_is_moved_whole(log: tuple[Path, list[Placed]], tmp_path: Path) -> None:
    wal, _placed = log
    victim = list_segments(wal)[-1].path
    victim.write_bytes(b"garbage, not a segment\n" * 100)
    report = truncate_at_first_bad(wal, tmp_path / "q")
    assert (report.segment, report.offset, report.moved) == (victim.name, 0, [tmp_path / "q" / victim.name])
    assert (tmp_path / "q" / victim.name).read_bytes() == b"garbage, not a segment\n" * 100
    assert WalReader(wal).validate().ok


def test_clean_or_missing_log_changes_nothing(log: tuple[Path, list[Placed]], tmp_path: Path) -> None:
    wal, placed = log
    before = _snapshot(wal)
    report = truncate_at_first_bad(wal, tmp_path / "q")
    assert report.segment is None and report.records_kept == len(placed) and report.last_lsn == len(placed)
    assert _snapshot(wal) == before and not (tmp_path / "q").exists()
    missing = truncate_at_first_bad(tmp_path / "nothing" / "wal", tmp_path / "q")
    assert missing.segment is None and missing.records_kept == 0 and not (tmp_path / "nothing").exists()
    assert missing.to_json()["quarantine"] is None


def test_after_a_crash_the_torn_tail_is_cut_before_writing_again(
    log: tuple[Path, list[Placed]], tmp_path: Path
) -> None:
    """Recovery order: replay (tolerating the torn tail), cut it into quarantine, then write."""
    wal, placed = log
    last = list_segments(wal)[-1].path
    last.write_bytes(last.read_bytes()[:-3])  # the crash tore the last record
    reader = WalReader(wal)
    replayed = lsns(reader.records())
    assert replayed == [p.record.lsn for p in placed[:-1]]
    assert reader.tolerated_tail is not None and reader.tolerated_tail.offset == placed[-1].start
    # A writer would put a new segment after the torn one, turning the tail into middle damage.
    with pytest.raises(WalCorruptionError) as refused:
        WalWriter(wal, next_lsn=replayed[-1] + 1)
    assert (refused.value.segment, refused.value.offset) == (last.name, placed[-1].start)
    report = truncate_at_first_bad(wal, tmp_path / "q")
    assert (report.segment, report.offset) == (last.name, placed[-1].start)
    with WalWriter(wal, next_lsn=replayed[-1] + 1) as writer:
        writer.append(Op.PUT, b"after", b"crash")
    reader = WalReader(wal)
    assert lsns(reader.records(mode="absolute_consistency")) == replayed + [replayed[-1] + 1]
    assert reader.validate().ok and reader.tolerated_tail is None
