"""Engine repair under power cuts: what a repair sets aside is never lost, a cut repair can be rerun.

lsm: a manifest that is not JSON goes to quarantine and is rebuilt from the tables. cow: a
damaged leaf of the newest commit: the file is copied aside and rolled back to the older meta,
then the WAL replays. After every cut, either the repair was acknowledged and the data dir holds
every key and verifies, or a second repair gets there; the damaged original is always kept
(in place or in quarantine).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from crashkit import Run, explore

from engines.cow.page import DATA_FILE, HEADER, PageType
from engines.fsutil import QUARANTINE_DIR
from engines.registry import create_engine, engine_class, open_engine

MODEL = {b"key%04d" % number: b"first-%04d" % number * 8 for number in range(600)}
CHANGES = {b"key%04d" % number: b"second-%04d" % number * 8 for number in range(100, 200)}
EXPECTED = {**MODEL, **CHANGES}


def _fill(path: Path, backend: str, options: dict[str, object]) -> None:
    with create_engine(path, backend, backend_options=options, wal_keep_segments=1000) as engine:
        engine.write_batch(list(MODEL.items()))
        engine.flush()
        engine.write_batch(list(CHANGES.items()))
        engine.flush()


def _damage_lsm(root: Path) -> None:
    _fill(root / "data", "lsm", {"memtable_bytes": 16384})
    (root / "data" / "manifest.json").write_bytes(b"not json at all")


def _damage_cow(root: Path) -> None:
    data = root / "data"
    _fill(data, "cow", {"page_size": 1024})
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "cow"))
    from cow_testkit import flip_byte, newest_meta, page_size_of, tree_pages

    meta, size = newest_meta(data), page_size_of(data)
    with open(data / DATA_FILE, "rb") as handle:
        for page in tree_pages(data):
            handle.seek(page * size)
            header = HEADER.unpack(handle.read(HEADER.size))
            if header[1] == PageType.LEAF and header[7] == meta.txid:
                flip_byte(data, page)
                return
    raise AssertionError("the newest commit wrote no leaf")


def _repair(backend: str) -> Callable[[Run], None]:
    def workload(run: Run) -> None:
        run.sent.append(_damaged_copy(run.root / "data", backend))
        report = engine_class(backend).repair(run.root / "data")
        assert report.ok, report
        run.ack("repaired")

    return workload


def _damaged_copy(data: Path, backend: str) -> bytes:
    return (data / ("manifest.json" if backend == "lsm" else DATA_FILE)).read_bytes()


def _check(backend: str) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        data = run.root / "data"
        damaged = run.sent[0]
        kept = [path.read_bytes() for path in (data / QUARANTINE_DIR).rglob("*") if path.is_file()] \
            if (data / QUARANTINE_DIR).is_dir() else []
        in_place = _damaged_copy(data, backend) if (data / ("manifest.json" if backend == "lsm" else DATA_FILE)).exists() else None
        assert damaged in kept or in_place == damaged, "the damaged original is neither in place nor in quarantine"
        if not run.acked:
            report = engine_class(backend).repair(data)
            assert report.ok, f"a second repair after the cut: {report}"
        with open_engine(data) as engine:
            found = dict(engine.scan())
            assert found == EXPECTED, f"{len(set(EXPECTED.items()) ^ set(found.items()))} keys differ after repair"
            assert engine.verify().ok

    return check


SETUPS = {"lsm": _damage_lsm, "cow": _damage_cow}


@pytest.mark.parametrize("backend", ["lsm", "cow"])
@pytest.mark.parametrize("limit", [6, pytest.param(200, marks=pytest.mark.slow)])
def test_repair_survives_power_cuts(tmp_path: Path, backend: str, limit: int) -> None:
    explore(tmp_path, _repair(backend), _check(backend), limit=limit, setup=SETUPS[backend])
