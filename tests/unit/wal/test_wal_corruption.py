"""Real damage in real segment files: validation finds it where it is, and the four recovery modes
do what they promise about it.

Every expectation is computed from where the records were written (``wal_testkit.Placed``):
the problem's offset is the damaged record's first byte, point-in-time yields exactly the records
in front of it, skipping loses exactly the records from it to the next 32 KiB block.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
from collections.abc import Iterable
from pathlib import Path

import crc32c
import pytest
from wal_testkit import BLOCK, Placed, flip_byte, lsns, next_block, segment_paths, write_log

from engines.errors import WalCorruptionError
from engines.wal import RecoveryMode, WalReader, list_segments, segment_name

TOLERATE = RecoveryMode.TOLERATE_CORRUPTED_TAIL
ABSOLUTE = RecoveryMode.ABSOLUTE_CONSISTENCY
POINT_IN_TIME = RecoveryMode.POINT_IN_TIME
SKIP = RecoveryMode.SKIP_ANY_CORRUPTED
SEGMENT_BYTES = 96 * 1024
ONE_BYTE_DAMAGE = {"checksum mismatch", "bad record length", "truncated record"}


def _sizes() -> list[int]:
    rng = random.Random(2024)
    sizes = []
    for number in range(140):
        if number % 17 == 5:
            sizes.append(rng.randrange(20_000, 70_000))  # spans blocks: FIRST/MIDDLE/LAST
        else:
            sizes.append(rng.randrange(0, 900))
    sizes.append(100 * 1024)  # the last record is fragmented too
    return sizes


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Placed]]:
    wal = tmp_path_factory.mktemp("pristine") / "wal"
    placed = write_log(wal, _sizes(), segment_bytes=SEGMENT_BYTES, seed=11)
    assert len(list_segments(wal)) >= 5
    return wal, placed


@pytest.fixture
def log(pristine: tuple[Path, list[Placed]], tmp_path: Path) -> tuple[Path, list[Placed]]:
    """A private copy of the pristine log to damage."""
    source, placed = pristine
    wal = tmp_path / "wal"
    shutil.copytree(source, wal)
    return wal, placed


def _segment_order(placed: list[Placed]) -> list[str]:
    return sorted({p.segment for p in placed})


def _read(wal: Path, mode: RecoveryMode) -> list[int]:
    return lsns(WalReader(wal).records(mode=mode))


def _before(placed: Iterable[Placed], segment: str, offset: int) -> list[int]:
    return [p.record.lsn for p in placed if p.segment < segment or (p.segment == segment and p.start < offset)]


def _assert_raises_at(wal: Path, mode: RecoveryMode, segment: str, offset: int) -> None:
    with pytest.raises(WalCorruptionError) as caught:
        _read(wal, mode)
    assert (caught.value.segment, caught.value.offset) == (segment, offset)


def _damaged_record(placed: list[Placed], segment: str, position: int) -> Placed | None:
    for p in placed:
        if p.segment == segment and p.start <= position < p.end:
            return p
    return None  # a block trailer


def test_random_byte_flips(log: tuple[Path, list[Placed]], tmp_path: Path) -> None:
    pristine_dir, placed = log
    order = _segment_order(placed)
    last_segment = order[-1]
    rng = random.Random(77)
    seen_reasons: set[str] = set()
    trailers = 0
    for case in range(60):
        wal = tmp_path / f"case-{case}"
        shutil.copytree(pristine_dir, wal)
        segment = rng.choice(order)
        path = wal / segment
        size = path.stat().st_size
        # Every third case lands in a header, where lengths and types live.
        if case % 3 == 0:
            victim = rng.choice([p for p in placed if p.segment == segment])
            header = rng.choice(victim.fragments)[0]
            position = header + rng.randrange(7)
        else:
            position = rng.randrange(size)
        flip_byte(path, position, rng.randrange(1, 256))

        damaged = _damaged_record(placed, segment, position)
        if damaged is None:
            trailers += 1
            offset = max(p.end for p in placed if p.segment == segment and p.end <= position)
            allowed = {"bad record length"}
        else:
            offset = damaged.start
            allowed = ONE_BYTE_DAMAGE | ({"not a WAL segment"} if offset == 0 else set())
        validation = WalReader(wal).validate()
        problem = validation.corruption
        assert problem is not None, f"case {case}: flip at {segment}:{position} not found"
        assert (problem.segment, problem.offset) == (segment, offset), f"case {case}"
        assert problem.reason in allowed, f"case {case}: {problem.reason}"
        seen_reasons.add(problem.reason)
        prefix = _before(placed, segment, offset)
        assert validation.records == len(prefix) and not validation.ok
        assert validation.last_lsn == (prefix[-1] if prefix else None)
        assert WalReader(wal).problems()[0] == problem

        _assert_raises_at(wal, ABSOLUTE, segment, offset)
        assert _read(wal, POINT_IN_TIME) == prefix
        if problem.reason == "not a WAL segment":
            lost = {p.record.lsn for p in placed if p.segment == segment}
        else:
            lost = {p.record.lsn for p in placed if p.segment == segment and offset <= p.start < next_block(position)}
        assert _read(wal, SKIP) == [p.record.lsn for p in placed if p.record.lsn not in lost], f"case {case}"
        anything_after = any(p.segment == segment and p.start > position for p in placed)
        if segment == last_segment and not anything_after and problem.reason != "not a WAL segment":
            assert _read(wal, TOLERATE) == prefix
        else:
            _assert_raises_at(wal, TOLERATE, segment, offset)
        shutil.rmtree(wal)
    assert "checksum mismatch" in seen_reasons and trailers < 60


def _rewrite_header(path: Path, position: int, *, kind: int | None = None, length_xor: int = 0) -> None:
    """Change a fragment's type or length and store a CRC that matches the change."""
    data = bytearray(path.read_bytes())
    _masked, length, old_kind = struct.unpack_from("<IHB", data, position)
    kind = old_kind if kind is None else kind
    length ^= length_xor
    crc = crc32c.crc32c(bytes([kind]) + bytes(data[position + 7 : position + 7 + length]))
    masked = (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    struct.pack_into("<IHB", data, position, masked if not length_xor else _masked, length, kind)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"length_xor": 0x8000}, "bad record length"),  # runs past its block
        ({"kind": 9}, "bad record type"),  # a CRC that holds, a type that does not exist
        ({"kind": 3}, "bad record type"),  # a MIDDLE fragment where a record must start
    ],
    ids=["length-past-block", "unknown-type", "middle-without-first"],
)
def test_header_damage_reasons(log: tuple[Path, list[Placed]], change: dict[str, int], reason: str) -> None:
    wal, placed = log
    order = _segment_order(placed)
    victim = next(p for p in placed if p.segment == order[2] and p.start > 0 and len(p.fragments) == 1)
    _rewrite_header(wal / victim.segment, victim.start, **change)
    problem = WalReader(wal).validate().corruption
    assert problem is not None and (problem.segment, problem.offset, problem.reason) == (
        victim.segment,
        victim.start,
        reason,
    )
    _assert_raises_at(wal, TOLERATE, victim.segment, victim.start)
    assert _read(wal, POINT_IN_TIME) == _before(placed, victim.segment, victim.start)


@pytest.mark.parametrize("where", ["last", "middle"])
def test_segment_cut_mid_record(log: tuple[Path, list[Placed]], tmp_path: Path, where: str) -> None:
    pristine_dir, placed = log
    order = _segment_order(placed)
    segment = order[-1] if where == "last" else order[1]
    rng = random.Random(5 if where == "last" else 6)
    for case in range(12):
        wal = tmp_path / f"cut-{case}"
        shutil.copytree(pristine_dir, wal)
        if case == 0:
            # Exactly at a block edge, after a whole FIRST fragment: still a truncated record.
            victim = next(p for p in placed if p.segment == segment and len(p.fragments) > 1)
            cut = victim.fragments[0][1]
        else:
            victim = rng.choice([p for p in placed if p.segment == segment])
            cut = rng.randrange(victim.start + 1, victim.end)
        os.truncate(wal / segment, cut)

        problem = WalReader(wal).validate().corruption
        assert problem is not None
        assert (problem.segment, problem.offset, problem.reason) == (segment, victim.start, "truncated record")
        prefix = _before(placed, segment, victim.start)
        assert _read(wal, POINT_IN_TIME) == prefix
        _assert_raises_at(wal, ABSOLUTE, segment, victim.start)
        later = [p.record.lsn for p in placed if p.segment > segment]
        assert _read(wal, SKIP) == prefix + later
        if where == "last":
            assert _read(wal, TOLERATE) == prefix  # a torn tail: what a crash mid-write leaves
        else:
            _assert_raises_at(wal, TOLERATE, segment, victim.start)
            gap = WalReader(wal).problems()[1]
            assert gap.segment == order[2] and gap.offset == 0 and gap.reason.startswith("lsn gap")
        shutil.rmtree(wal)


def test_zeroed_tail(log: tuple[Path, list[Placed]], tmp_path: Path) -> None:
    pristine_dir, placed = log
    segment = _segment_order(placed)[-1]
    rng = random.Random(8)
    in_segment = [p for p in placed if p.segment == segment]
    for case in range(12):
        wal = tmp_path / f"zero-{case}"
        shutil.copytree(pristine_dir, wal)
        victim = rng.choice(in_segment)
        if case % 4 == 0:
            start = rng.choice(victim.fragments)[0]  # zeros from a fragment header on
        else:
            start = rng.randrange(victim.start, victim.end)
        path = wal / segment
        size = path.stat().st_size
        with open(path, "r+b") as handle:
            handle.seek(start)
            handle.write(bytes(size - start))
        assert path.stat().st_size == size

        at_header = any(start == header for header, _end in victim.fragments)
        expected = (segment, victim.start, "zeroed region" if at_header else "checksum mismatch")
        problem = WalReader(wal).validate().corruption
        assert problem is not None and (problem.segment, problem.offset, problem.reason) == expected
        prefix = _before(placed, segment, victim.start)
        assert _read(wal, TOLERATE) == prefix
        assert _read(wal, POINT_IN_TIME) == prefix
        assert _read(wal, SKIP) == prefix
        _assert_raises_at(wal, ABSOLUTE, segment, victim.start)
        shutil.rmtree(wal)


def test_zeroed_block_in_the_middle_of_the_last_segment_is_not_a_tail(tmp_path: Path) -> None:
    """A page that never reached the disk while later ones did: not a torn tail, data went on."""
    wal = tmp_path / "wal"
    placed = write_log(wal, [300] * 800)
    (segment,) = _segment_order(placed)
    path = wal / segment
    data = bytearray(path.read_bytes())
    assert len(data) > 3 * BLOCK
    data[BLOCK : 2 * BLOCK] = bytes(BLOCK)
    path.write_bytes(bytes(data))
    victim = _damaged_record(placed, segment, BLOCK)
    assert victim is not None and victim.start < BLOCK  # the record crossing into the zeroed block
    _assert_raises_at(wal, TOLERATE, segment, victim.start)
    assert _read(wal, POINT_IN_TIME) == _before(placed, segment, victim.start)
    assert _read(wal, SKIP) == [p.record.lsn for p in placed if not victim.start <= p.start < 2 * BLOCK]


def test_torn_first_fragment_of_the_last_record_is_a_tail(log: tuple[Path, list[Placed]]) -> None:
    """Pages of one write land in any order: the LAST fragment may be on disk, the FIRST not."""
    wal, placed = log
    victim = placed[-1]
    assert len(victim.fragments) >= 3
    header, end = victim.fragments[0]
    path = wal / victim.segment
    data = bytearray(path.read_bytes())
    data[header:end] = bytes(end - header)
    path.write_bytes(bytes(data))
    problem = WalReader(wal).validate().corruption
    assert problem is not None and (problem.offset, problem.reason) == (victim.start, "zeroed region")
    assert _read(wal, TOLERATE) == [p.record.lsn for p in placed[:-1]]


def test_dropped_middle_segment(log: tuple[Path, list[Placed]], tmp_path: Path) -> None:
    wal, placed = log
    segments = list_segments(wal)
    dropped, following = segments[2], segments[3]
    shutil.move(dropped.path, tmp_path / dropped.path.name)
    missing = (dropped.first_lsn, following.first_lsn - 1)
    problem = WalReader(wal).validate().corruption
    reason = f"lsn gap (missing {missing[0]}..{missing[1]})"
    assert problem is not None and (problem.segment, problem.offset, problem.reason) == (following.path.name, 0, reason)
    assert _read(wal, POINT_IN_TIME) == list(range(1, missing[0]))
    everything = [p.record.lsn for p in placed]
    assert _read(wal, SKIP) == [lsn for lsn in everything if not missing[0] <= lsn <= missing[1]]
    _assert_raises_at(wal, TOLERATE, following.path.name, 0)
    _assert_raises_at(wal, ABSOLUTE, following.path.name, 0)


def test_segment_replayed_twice_is_out_of_order(log: tuple[Path, list[Placed]]) -> None:
    wal, placed = log
    first = list_segments(wal)[0]
    copy = wal / segment_name(placed[-1].record.lsn + 1)
    shutil.copyfile(first.path, copy)
    problem = WalReader(wal).validate().corruption
    assert problem is not None and (problem.segment, problem.offset, problem.reason) == (
        copy.name,
        0,
        "lsn out of order",
    )
    everything = [p.record.lsn for p in placed]
    assert _read(wal, SKIP) == everything  # the duplicates are skipped, one problem each
    assert len(WalReader(wal).problems()) == sum(1 for p in placed if p.segment == first.path.name)
    assert _read(wal, POINT_IN_TIME) == everything
    _assert_raises_at(wal, TOLERATE, copy.name, 0)


@pytest.mark.parametrize("which", [1, -1], ids=["middle", "last"])
def test_garbage_in_place_of_a_segment(log: tuple[Path, list[Placed]], which: int) -> None:
    wal, placed = log
    victim = list_segments(wal)[which]
    victim.path.write_bytes(b"this is not a write-ahead log segment\n" * 500)
    problem = WalReader(wal).validate().corruption
    assert problem is not None
    assert (problem.segment, problem.offset, problem.reason) == (victim.path.name, 0, "not a WAL segment")
    kept = [p.record.lsn for p in placed if p.segment != victim.path.name]
    assert _read(wal, SKIP) == kept  # one problem for the file, not one per block
    assert _read(wal, POINT_IN_TIME) == [lsn for lsn in kept if lsn < victim.first_lsn]
    _assert_raises_at(wal, TOLERATE, victim.path.name, 0)  # a foreign file is never a torn tail
    _assert_raises_at(wal, ABSOLUTE, victim.path.name, 0)


def test_random_bytes_in_place_of_a_segment(log: tuple[Path, list[Placed]]) -> None:
    wal, _placed = log
    for seed in range(8):
        victim = list_segments(wal)[1]
        victim.path.write_bytes(random.Random(seed).randbytes(victim.size))
        problem = WalReader(wal).validate().corruption
        assert problem is not None and (problem.segment, problem.offset) == (victim.path.name, 0)
        assert problem.reason in ONE_BYTE_DAMAGE | {"not a WAL segment"}


def test_problems_lists_every_damage_in_order(log: tuple[Path, list[Placed]]) -> None:
    wal, placed = log
    order = _segment_order(placed)
    victims = [
        next(p for p in placed if p.segment == order[1] and p.start > 0),
        next(p for p in placed if p.segment == order[3] and p.start > 0),
    ]
    paths = segment_paths(wal)
    for victim in victims:
        flip_byte(paths[victim.segment], victim.end - 1, 0x40)
    problems = WalReader(wal).problems()
    # Each damage, then the LSN gap its skipped records leave.
    assert [(p.segment, p.offset, p.reason.split(" (")[0]) for p in problems] == [
        (victims[0].segment, victims[0].start, "checksum mismatch"),
        (problems[1].segment, problems[1].offset, "lsn gap"),
        (victims[1].segment, victims[1].start, "checksum mismatch"),
        (problems[3].segment, problems[3].offset, "lsn gap"),
    ]
    assert WalReader(wal).problems(limit=1) == WalReader(wal).problems()[:1]
    assert WalReader(wal).validate().corruption == WalReader(wal).problems()[0]


def test_validation_never_writes(log: tuple[Path, list[Placed]]) -> None:
    wal, placed = log
    flip_byte(wal / placed[10].segment, placed[10].start + 9, 1)
    before = {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in wal.iterdir()}
    WalReader(wal).validate()
    WalReader(wal).problems()
    list(WalReader(wal).records(mode=SKIP))
    assert {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in wal.iterdir()} == before
