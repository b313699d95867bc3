"""Each engine's commit path under power cuts: every acknowledged write survives, the store verifies.

cow: pages, fdatasync, meta, fdatasync. lsm: table temp + fsync + rename + directory fsync, then
the manifest replaced. rocksdb: our WAL, marker and applied-LSN bookkeeping are in the model;
rocksdict's own files are not (its syncs do not go through engines.fsio), so they are taken as a
killed process leaves them (``live``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from crashkit import explore
from enginekit import check_engine, engine_workload
from support import available_backends

LIVE = {"rocksdb": ("data/rocksdb",)}


def _backends() -> list:
    present = set(available_backends())
    return [
        pytest.param(name, marks=() if name in present else pytest.mark.skip(reason=f"{name} not available"))
        for name in ("cow", "lsm", "rocksdb")
    ]


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("durability", ["sync", "async"])
def test_engine_keeps_acknowledged_writes(tmp_path: Path, backend: str, durability: str) -> None:
    # explore checks every cut image (dropped and torn) and the clean end: at least one cut ran.
    assert (
        explore(
            tmp_path,
            engine_workload(backend, durability),
            check_engine,
            limit=8,
            points=("before-close",),
            live=LIVE.get(backend, ()),
        )
        >= 3
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("durability", ["sync", "async"])
def test_engine_keeps_acknowledged_writes_at_every_sync(tmp_path: Path, backend: str, durability: str) -> None:
    # explore checks every cut image (dropped and torn) and the clean end: at least one cut ran.
    assert (
        explore(
            tmp_path,
            engine_workload(backend, durability),
            check_engine,
            limit=400,
            points=("before-close",),
            live=LIVE.get(backend, ()),
        )
        >= 3
    )
