"""Freeing a full disk (engines.reclaim) under power cuts: what it reported freed stays freed, and
every write is still there (the segments it removes are covered by the store)."""

from __future__ import annotations

from pathlib import Path

import pytest
from crashkit import Run, explore

from engines.reclaim import reclaim
from engines.registry import create_engine, open_engine

KEYS = {b"key%04d" % number: b"value-%04d" % number * 50 for number in range(400)}


def _setup(root: Path) -> None:
    with create_engine(root / "data", "lsm", wal_segment_bytes=65536, wal_keep_segments=64) as engine:
        engine.write_batch(list(KEYS.items())[:200])
        for key, value in list(KEYS.items())[200:]:
            engine.put(key, value)
        engine.flush()


def _reclaim(run: Run) -> None:
    removed = reclaim(run.root / "data")
    run.sent.extend(Path(item.path).name for item in removed)
    run.ack("reclaimed")


def _check(run: Run) -> None:
    data = run.root / "data"
    if run.acked:
        assert run.sent, "nothing was reclaimable: the test proves nothing"
        back = [name for name in run.sent if (data / "wal" / name).exists()]
        assert not back, f"{len(back)} WAL segment(s) reported freed are back after the cut: {back[:3]}"
    with open_engine(data) as engine:
        assert dict(engine.scan()) == KEYS
        assert engine.verify().ok


@pytest.mark.parametrize("limit", [6, pytest.param(100, marks=pytest.mark.slow)])
def test_reclaimed_space_stays_reclaimed_after_a_power_cut(tmp_path: Path, limit: int) -> None:
    # explore checks every cut image (dropped and torn) and the clean end: at least one cut ran.
    assert explore(tmp_path, _reclaim, _check, limit=limit, setup=_setup) >= 3
