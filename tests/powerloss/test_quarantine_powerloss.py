"""Quarantine moves and the WAL truncate under power cuts: what is set aside is never lost.

At every cut each moved file is whole at its old place or in quarantine (safety rule 1: nothing
a recovery discards is deleted), even when the directory it left is made durable by later work.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from crashkit import Run, explore
from support import crash_copy

from engines import fsio
from engines.fsutil import QUARANTINE_DIR, move_to_quarantine, new_quarantine
from engines.registry import create_engine, open_engine
from engines.wal import Op, RecoveryMode, WalReader, WalWriter, list_segments, truncate_at_first_bad

FILES = {f"table-{number}.sst": bytes([number]) * (5000 + number) for number in range(4)}


def _files(root: Path) -> None:
    data = root / "data"
    (data / "sub").mkdir(parents=True)
    for name, content in FILES.items():
        (data / "sub" / name).write_bytes(content)
    for folder in (data / "sub", data, root):
        fsio.fsync_dir(folder)


def _move(run: Run) -> None:
    data = run.root / "data"
    for name in FILES:
        quarantine = new_quarantine(data, f"bad-{name}")
        move_to_quarantine([data / "sub" / name], quarantine, base=data)
        run.ack(name)
        fsio.fsync_dir(data / "sub")  # later work in the same directory (a new table) syncs it


def _check_move(run: Run) -> None:
    data = run.root / "data"
    quarantined = (
        {path.name: path.read_bytes() for path in (data / QUARANTINE_DIR).rglob("table-*")}
        if (data / QUARANTINE_DIR).is_dir()
        else {}
    )
    for name, content in FILES.items():
        here = data / "sub" / name
        copies = [quarantined.get(name)] + ([here.read_bytes()] if here.exists() else [])
        assert content in copies, f"{name} lost: neither in sub/ nor in quarantine whole"
        if name in run.acked:
            assert quarantined.get(name) == content, f"{name} acknowledged as quarantined but not there"
            assert not here.exists(), f"{name} acknowledged as moved but back in sub/ after the cut"


def _damaged_wal(position: int) -> Callable[[Path], None]:
    """A WAL of several segments with 64 bytes of garbage in the middle of segment ``position``."""

    def setup(root: Path) -> None:
        with WalWriter(root / "wal", next_lsn=1, segment_bytes=32768) as writer:
            for number in range(120):
                writer.sync(writer.append(Op.PUT, b"k%03d" % number, b"v" * 600))
        segment = sorted((root / "wal").glob("*.wal"))[position]
        with open(segment, "r+b") as handle:
            handle.seek(segment.stat().st_size // 2)
            handle.write(b"\xff" * 64)

    return setup


def _good_records(root: Path) -> dict[int, bytes]:
    return {record.lsn: record.key for record in WalReader(root / "wal").records(mode=RecoveryMode.POINT_IN_TIME)}


def _truncate(run: Run) -> None:
    run.sent.append(_good_records(run.root))
    segments = sorted((run.root / "wal").glob("*.wal"))
    damaged = next(index for index, path in enumerate(segments) if b"\xff" * 64 in path.read_bytes())
    # What must land in quarantine: the damaged segment's tail and every later segment, whole.
    run.sent.append([path.read_bytes() for path in segments[damaged + 1 :]])
    truncate_at_first_bad(run.root / "wal", run.root / "quarantine")
    run.ack("truncated")


def _check_truncate(run: Run) -> None:
    before = run.sent[0]
    assert _good_records(run.root) == before, "records in front of the damage were lost"
    quarantined = (
        [path.read_bytes() for path in sorted((run.root / "quarantine").rglob("*")) if path.is_file()]
        if (run.root / "quarantine").is_dir()
        else []
    )
    tail = b"".join(quarantined)
    if run.acked:
        assert b"\xff" * 64 in tail, "the cut-off tail is not in quarantine"
        later = run.sent[1]
        assert all(data in quarantined for data in later), "a later segment is not whole in quarantine"
        assert len(quarantined) == len(later) + 1, (
            f"{len(quarantined)} files in quarantine, not {len(later)} + the tail"
        )
        assert len(list(WalReader(run.root / "wal").records(mode=RecoveryMode.ABSOLUTE_CONSISTENCY))) == len(before)
    else:
        # Cut short: the damaged bytes are still in the WAL or whole in quarantine, and a
        # second truncate finishes the job.
        segments = [path.read_bytes() for path in sorted((run.root / "wal").glob("*.wal"))]
        assert b"\xff" * 64 in b"".join(segments) + tail, "the damaged tail vanished instead of going to quarantine"
        assert all(data in segments + quarantined for data in run.sent[1]), "a later segment was lost on its way"
        truncate_at_first_bad(run.root / "wal", run.root / "quarantine")
        assert len(list(WalReader(run.root / "wal").records(mode=RecoveryMode.ABSOLUTE_CONSISTENCY))) == len(before)


@pytest.mark.parametrize("limit", [8, pytest.param(200, marks=pytest.mark.slow)])
def test_quarantine_moves_survive_power_cuts(tmp_path: Path, limit: int) -> None:
    # explore checks every cut image (dropped and torn) and the clean end: at least one cut ran.
    assert explore(tmp_path, _move, _check_move, limit=limit, setup=_files) >= 3


@pytest.mark.parametrize("position", [-1, 0], ids=["last-segment", "first-segment"])
@pytest.mark.parametrize("limit", [8, pytest.param(200, marks=pytest.mark.slow)])
def test_wal_truncate_survives_power_cuts(tmp_path: Path, limit: int, position: int) -> None:
    # explore checks every cut image (dropped and torn) and the clean end: at least one cut ran.
    assert explore(tmp_path, _truncate, _check_truncate, limit=limit, setup=_damaged_wal(position)) >= 3


ROWS = {b"k%04d" % number: b"row-%04d" % number * 8 for number in range(150)}


def _torn_at_open(root: Path) -> None:
    """A data dir a killed process left with its last WAL record cut mid-way (``wal_recovery`` tolerant)."""
    with create_engine(root / "live", "lsm", durability="sync") as engine:
        for key, value in ROWS.items():
            engine.put(key, value)
        crash_copy(root / "live", root / "data")
    shutil.rmtree(root / "live")
    last = list_segments(root / "data" / "wal")[-1].path
    last.write_bytes(last.read_bytes()[:-30])


def _open_over_torn_tail(run: Run) -> None:
    last = list_segments(run.root / "data" / "wal")[-1].path
    run.sent.append(last.read_bytes())
    with open_engine(run.root / "data") as engine:
        run.ack("opened")
        engine.put(b"after", b"the open")
        run.ack("after")


def _check_torn_tail(run: Run) -> None:
    data = run.root / "data"
    torn = run.sent[0][-40:]  # inside the cut record: in the WAL still, or in quarantine's tail file
    files = [path for path in data.rglob("*") if path.is_file() and ".wal" in path.name]
    assert any(torn in path.read_bytes() for path in files), "the torn tail vanished instead of going to quarantine"
    with open_engine(data) as engine:
        expected = {key: value for key, value in ROWS.items() if key != b"k0149"}  # the torn record
        assert {key: engine.get(key) for key in expected} == expected
        if "after" in run.acked:
            assert engine.get(b"after") == b"the open"
        assert engine.verify().ok


@pytest.mark.parametrize("limit", [8, pytest.param(200, marks=pytest.mark.slow)])
def test_open_over_a_torn_tail_survives_power_cuts(tmp_path: Path, limit: int) -> None:
    # explore checks every cut image (dropped and torn) and the clean end: at least one cut ran.
    assert explore(tmp_path, _open_over_torn_tail, _check_torn_tail, limit=limit, setup=_torn_at_open) >= 3
