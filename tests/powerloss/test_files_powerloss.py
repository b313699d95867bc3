"""Whole copies an engine writes, under power cuts: checkpoints, cow snapshots and exports.

A snapshot acknowledged opens and holds the committed state; an export acknowledged is whole
and the previous export, until then, is never replaced by a part of the new one.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from crashkit import Run, explore
from support import crash_copy

from engines.registry import create_engine, open_engine
from engines.transfer import export_jsonl, read_jsonl

MODEL = {b"key%04d" % number: b"value-%04d" % number * 10 for number in range(500)}
OLD_EXPORT = '{"old": "export"}\n'


def _cow(root: Path) -> None:
    with create_engine(root / "data", "cow", backend_options={"page_size": 1024}) as engine:
        engine.write_batch(list(MODEL.items()))


def _snapshot(run: Run) -> None:
    with open_engine(run.root / "data") as engine:
        engine.create_snapshot("before-change")
        run.ack("snapshot")
        engine.put(b"key0000", b"changed after the snapshot")


def _check_snapshot(run: Run) -> None:
    with open_engine(run.root / "data") as engine:
        assert engine.verify().ok
        if run.acked:
            reader = engine.open_snapshot("before-change")
            try:
                assert dict(reader.scan()) == MODEL, "the acknowledged snapshot does not hold the committed state"
            finally:
                reader.close()


def _lsm_and_old_export(root: Path) -> None:
    with create_engine(root / "data", "lsm") as engine:
        engine.write_batch(list(MODEL.items()))
    (root / "out.jsonl").write_text(OLD_EXPORT, encoding="utf-8")


def _export(run: Run) -> None:
    with open_engine(run.root / "data", mode="ro") as engine:
        export_jsonl(engine, run.root / "out.jsonl")
        run.ack("export")


def _check_export(run: Run) -> None:
    text = (run.root / "out.jsonl").read_text(encoding="utf-8")
    if text == OLD_EXPORT:
        assert not run.acked, "the acknowledged export is not there: the old one is"
        return
    rows = {key: value for _number, key, value in read_jsonl(run.root / "out.jsonl")}
    assert rows == MODEL, f"an export that is neither the old one nor whole: {len(rows)} rows"


def _checkpoint(run: Run) -> None:
    with open_engine(run.root / "data") as engine:
        engine.checkpoint(run.root / "copy")
        run.ack("checkpoint")


def _check_checkpoint(run: Run) -> None:
    if not run.acked:
        return
    with open_engine(run.root / "copy") as engine:
        assert dict(engine.scan()) == MODEL, "the acknowledged checkpoint does not hold the data"
        assert engine.verify().ok


# rocksdict writes and syncs RocksDB's own files itself: taken as a killed process leaves them.
LIVE = {"rocksdb": ("data/rocksdb", ".copy.partial/rocksdb", "copy/rocksdb")}


@pytest.mark.parametrize("backend", ["lsm", "cow", "rocksdb"])
@pytest.mark.parametrize("limit", [6, pytest.param(200, marks=pytest.mark.slow)])
def test_checkpoint_survives_power_cuts(tmp_path: Path, limit: int, backend: str) -> None:
    def setup(root: Path) -> None:
        with create_engine(root / "data", backend) as engine:
            engine.write_batch(list(MODEL.items()))

    # explore checks every cut image (dropped and torn) and the clean end: at least one cut ran.
    live = LIVE.get(backend, ())
    assert explore(tmp_path, _checkpoint, _check_checkpoint, limit=limit, setup=setup, live=live) >= 3


# Acknowledged (sync) writes a killed process left in the WAL only: the store does not cover them.
EXTRA = {b"extra%04d" % number: b"logged-only-%04d" % number * 20 for number in range(120)}


def _crashed(backend: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        engine = create_engine(root / "live", backend, durability="sync", wal_segment_bytes=65536)
        try:
            engine.write_batch(list(MODEL.items()))
            engine.flush()
            for key, value in EXTRA.items():
                engine.put(key, value)
            crash_copy(root / "live", root / "data")
        finally:
            engine.close()
        shutil.rmtree(root / "live")

    return setup


def _read_only_checkpoint(run: Run) -> None:
    with open_engine(run.root / "data", mode="ro") as engine:
        engine.checkpoint(run.root / "copy")
        run.ack("checkpoint")


def _check_copy_holds_the_wal(run: Run) -> None:
    if not run.acked:
        return
    with open_engine(run.root / "copy") as engine:
        assert dict(engine.scan()) == {**MODEL, **EXTRA}, "the acknowledged copy lost what only the WAL held"
        assert engine.verify().ok


@pytest.mark.parametrize("backend", ["lsm", "cow"])
@pytest.mark.parametrize("limit", [6, pytest.param(200, marks=pytest.mark.slow)])
def test_read_only_checkpoint_of_a_crashed_data_dir_survives_power_cuts(
    tmp_path: Path, limit: int, backend: str
) -> None:
    # A read-only open commits nothing first: the copy's WAL segments are what hold EXTRA.
    assert (
        explore(tmp_path, _read_only_checkpoint, _check_copy_holds_the_wal, limit=limit, setup=_crashed(backend)) >= 3
    )


@pytest.mark.parametrize("limit", [6, pytest.param(200, marks=pytest.mark.slow)])
def test_cow_snapshot_survives_power_cuts(tmp_path: Path, limit: int) -> None:
    # explore checks every cut image (dropped and torn) and the clean end: at least one cut ran.
    assert explore(tmp_path, _snapshot, _check_snapshot, limit=limit, setup=_cow) >= 3


@pytest.mark.parametrize("limit", [6, pytest.param(200, marks=pytest.mark.slow)])
def test_export_survives_power_cuts(tmp_path: Path, limit: int) -> None:
    # explore checks every cut image (dropped and torn) and the clean end: at least one cut ran.
    assert explore(tmp_path, _export, _check_export, limit=limit, setup=_lsm_and_old_export) >= 3
