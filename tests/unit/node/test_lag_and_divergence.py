"""The primary's view of standby lag, and finding and exporting a diverged node's records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engines import create_engine
from engines.errors import EngineError, SafetyRefusal
from engines.node.divergence import export_records, plan_rejoin
from engines.node.lag import CommitClock
from engines.node.state import TimelineEntry


def test_commit_clock_tells_how_long_the_first_missing_record_has_waited() -> None:
    clock = CommitClock(resolution=0.01)
    clock.note(10, when=100.0)
    clock.note(11, when=100.004)  # within the resolution: the same sample, widened to LSN 11
    clock.note(20, when=101.0)
    clock.note(30, when=102.0)
    assert clock.committed_at(5) == 100.0  # older than every sample: the oldest, a lower bound
    assert clock.committed_at(11) == 100.0
    assert clock.committed_at(12) == 101.0 and clock.committed_at(21) == 102.0
    assert clock.committed_at(31) is None
    assert clock.lag(30, 30, now=105.0) == (0, 0.0)
    assert clock.lag(20, 30, now=105.0) == (10, 3.0)
    assert clock.lag(11, 30, now=105.0) == (19, 4.0)


def test_commit_clock_memory_stays_bounded() -> None:
    clock = CommitClock(resolution=0.0, keep=100)
    for lsn in range(1, 1001):
        clock.note(lsn, when=float(lsn))
    assert len(clock._lsns) <= 200
    assert clock.committed_at(1000) == 1000.0


def _plan(
    node_epoch: int,
    node_last: int,
    primary_epoch: int,
    primary_last: int,
    history: list[TimelineEntry],
    node_is_primary: bool = False,
):  # type: ignore[no-untyped-def]
    return plan_rejoin(
        primary="http://p",
        node_epoch=node_epoch,
        node_last_lsn=node_last,
        primary_epoch=primary_epoch,
        primary_last_lsn=primary_last,
        history=history,
        node_is_primary=node_is_primary,
    )


def test_plan_rejoin_cuts_at_the_epoch_switch_and_refuses_without_a_fork() -> None:
    history = [TimelineEntry(epoch=1, start_lsn=100), TimelineEntry(epoch=2, start_lsn=250)]
    behind = _plan(0, 90, 2, 400, history)
    assert behind.diverged is False and behind.fork_lsn == 100
    diverged = _plan(0, 130, 2, 400, history)
    assert diverged.diverged is True and diverged.fork_lsn == 100 and diverged.diverged_records == 30
    assert _plan(1, 260, 2, 400, history).fork_lsn == 250  # an epoch-1 primary forks where epoch 2 began
    assert _plan(2, 300, 2, 400, history).diverged is False  # same epoch, behind: a plain standby
    with pytest.raises(SafetyRefusal, match="newer"):
        _plan(3, 10, 2, 400, history)
    with pytest.raises(SafetyRefusal, match="no fork point"):
        _plan(2, 500, 2, 400, history)
    with pytest.raises(SafetyRefusal, match="split brain"):
        _plan(2, 300, 2, 400, history, node_is_primary=True)


def test_export_writes_every_record_past_the_fork_and_names_what_is_missing(tmp_path: Path) -> None:
    engine = create_engine(tmp_path / "d", "lsm")
    try:
        for i in range(5):
            engine.put(f"k{i}".encode(), f"v{i}".encode())
        engine.delete(b"k0")
        engine.write_batch([(b"b1", b"\xff"), (b"b2", None)])
        last = engine.last_lsn
        wal_dir = engine.wal_dir
        result = export_records(wal_dir, 3, last + 2, tmp_path / "out.jsonl")
    finally:
        engine.close()
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [(line["lsn"], line["op"], line["key"]) for line in lines] == [
        (4, "put", "k3"),
        (5, "put", "k4"),
        (6, "delete", "k0"),
        (7, "put", "b1"),
        (7, "delete", "b2"),
    ]
    assert lines[3]["value_encoding"] == "base64" and lines[3]["batch"] is True
    assert result.records == 4 and result.first_lsn == 4 and result.last_lsn == last
    assert result.missing == [[last + 1, last + 2]]  # asked for more than the WAL holds: said so
    with pytest.raises(EngineError, match="exists"):
        export_records(wal_dir, 3, last, tmp_path / "out.jsonl")  # never overwrites an export
