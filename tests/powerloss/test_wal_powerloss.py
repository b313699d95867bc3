"""The WAL after a power cut: every acknowledged record is there and the log reads cleanly.

Sync mode acknowledges a record once ``sync(lsn)`` returned; async mode acknowledges what the
writer reports durable (``durable_lsn``, advanced by the background commit every few ms).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from crashkit import Run, explore

from engines.wal import Op, RecoveryMode, WalReader, WalWriter, truncate_at_first_bad

SEGMENT = 32768  # one block: the writer seals and creates a segment every ~100 records


def _records(wal: Path) -> dict[int, bytes]:
    # A torn tail is allowed (writes after the last sync); a bad record before it is not.
    reader = WalReader(wal)
    return {record.lsn: record.key for record in reader.records(mode=RecoveryMode.TOLERATE_CORRUPTED_TAIL)}


def _check(run: Run) -> None:
    root = run.root
    found = _records(root / "wal")
    missing = [lsn for lsn, key in run.acked if found.get(lsn) != key]
    assert not missing, f"{len(missing)} acknowledged records lost, first LSN {missing[0]}"
    # Reopening for append must work on what the cut left, once the torn tail (unacknowledged
    # bytes) is cut as the engines do on open.
    truncate_at_first_bad(root / "wal", root / "quarantine")
    last = max(found, default=0)
    with WalWriter(root / "wal", next_lsn=last + 1) as writer:
        writer.sync(writer.append(Op.PUT, b"after", b"reboot"))


def _sync_workload(run: Run) -> None:
    with WalWriter(run.root / "wal", next_lsn=1, durability="sync", segment_bytes=SEGMENT) as writer:
        for number in range(150):
            key = b"k%03d" % number
            lsn = writer.append(Op.PUT, key, b"v" * 700)
            writer.sync(lsn)
            run.ack((lsn, key))
        run.point("before-close")


def _async_workload(run: Run) -> None:
    with WalWriter(
        run.root / "wal", next_lsn=1, durability="async", segment_bytes=SEGMENT, async_interval_ms=1
    ) as writer:
        sent: list[tuple[int, bytes]] = []
        for number in range(150):
            key = b"k%03d" % number
            sent.append((writer.append(Op.PUT, key, b"v" * 700), key))
            if number % 8 == 7:
                time.sleep(0.005)  # let the background commit run
            durable = writer.durable_lsn
            if not run.cut:
                run.acked = [item for item in sent if item[0] <= durable]
        run.point("before-close")


@pytest.mark.parametrize("limit", [10, pytest.param(200, marks=pytest.mark.slow)])
def test_sync_wal_keeps_every_acknowledged_record(tmp_path: Path, limit: int) -> None:
    assert explore(tmp_path, _sync_workload, _check, limit=limit, points=("before-close",)) > 5


@pytest.mark.parametrize("limit", [10, pytest.param(200, marks=pytest.mark.slow)])
def test_async_wal_keeps_what_it_reported_durable(tmp_path: Path, limit: int) -> None:
    assert explore(tmp_path, _async_workload, _check, limit=limit, points=("before-close",)) > 5
