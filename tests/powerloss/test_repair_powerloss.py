"""Engine repair under power cuts: what a repair sets aside is never lost, a cut repair can be rerun.

lsm: a manifest that is not JSON goes to quarantine and is rebuilt from the tables; a damaged
table goes to quarantine and the WAL replays what it held. cow: a damaged leaf of the newest
commit: the file is copied aside and rolled back to the older meta, then the WAL replays; both
meta pages damaged: salvage. After every cut, either the repair was acknowledged and the data dir holds
every key and verifies, or a second repair gets there; the damaged original is always kept
(in place or in quarantine).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from crashkit import Run, explore

from engines.cow.meta import read_meta_slots
from engines.cow.page import DATA_FILE, HEADER, PageCorruptionError, PageType
from engines.cow.pagefile import PageFile
from engines.cow.repair import rebuild_from_snapshot
from engines.fsutil import QUARANTINE_DIR
from engines.lsm.manifest import load_manifest
from engines.lsm.repair import quarantine_sstable
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


NOTE = "damaged.txt"  # beside the data dir: which file the setup damaged


def _flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x40]))


def _damage_manifest(root: Path) -> None:
    _fill(root / "data", "lsm", {"memtable_bytes": 16384})
    (root / "data" / "manifest.json").write_bytes(b"not json at all")
    (root / NOTE).write_text("manifest.json")


def _damage_table(root: Path) -> None:
    _fill(root / "data", "lsm", {"memtable_bytes": 16384})
    table = max((root / "data" / "sstables").glob("*.sst"), key=lambda path: path.stat().st_size)
    _flip(table, 200)  # inside the first data block
    (root / NOTE).write_text(f"sstables/{table.name}")


def _cow_kit() -> object:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "cow"))
    import cow_testkit

    return cow_testkit


def _damage_leaf(root: Path) -> None:
    data = root / "data"
    _fill(data, "cow", {"page_size": 1024})
    kit: Any = _cow_kit()
    meta, size = kit.newest_meta(data), kit.page_size_of(data)
    (root / NOTE).write_text(DATA_FILE)
    with open(data / DATA_FILE, "rb") as handle:
        for page in kit.tree_pages(data):
            handle.seek(page * size)
            header = HEADER.unpack(handle.read(HEADER.size))
            if header[1] == PageType.LEAF and header[7] == meta.txid:
                kit.flip_byte(data, page)
                return
    raise AssertionError("the newest commit wrote no leaf")


def _damage_metas(root: Path) -> None:
    data = root / "data"
    _fill(data, "cow", {"page_size": 1024})
    kit: Any = _cow_kit()
    kit.flip_byte(data, 0, 40)
    kit.flip_byte(data, 1, 40)  # both meta pages: only a salvage reads the tree back
    (root / NOTE).write_text(DATA_FILE)


def _repair(backend: str) -> Callable[[Run], None]:
    def workload(run: Run) -> None:
        damaged = run.root / "data" / (run.root / NOTE).read_text()
        run.sent.append((damaged.relative_to(run.root / "data"), damaged.read_bytes()))
        engine_class(backend).repair(run.root / "data")  # a salvage reports what it could not read itself
        run.ack("repaired")

    return workload


def _metas_point_at_durable_pages(data: Path) -> None:
    """Every meta page that checks out points at a freelist run that reached the disk.

    A repair writes the run, fsyncs, then the meta: a meta whose run is missing or torn after a
    cut means the run's fsync was skipped, and the next open fails instead of falling back.
    """
    fd = os.open(data / DATA_FILE, os.O_RDONLY)
    try:
        try:
            slots = read_meta_slots(fd, DATA_FILE, None, allow_truncated=True)
        except PageCorruptionError:
            return  # no meta checks out (the damage under repair): nothing points anywhere
        file = PageFile(fd, Path(DATA_FILE), slots.page_size, writable=False)
        for meta in slots.metas:
            assert meta.hwm * slots.page_size <= slots.file_size, (
                f"meta txid {meta.txid} points past the end of the file"
            )
            try:
                file.read_freelist(meta)
            except PageCorruptionError as exc:
                raise AssertionError(f"meta txid {meta.txid} points at a freelist that is not on disk: {exc}") from exc
    finally:
        os.close(fd)


def _check(backend: str) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        data = run.root / "data"
        if backend == "cow" and (data / DATA_FILE).is_file():
            _metas_point_at_durable_pages(data)
        relpath, damaged = run.sent[0]
        kept = (
            [path.read_bytes() for path in (data / QUARANTINE_DIR).rglob("*") if path.is_file()]
            if (data / QUARANTINE_DIR).is_dir()
            else []
        )
        in_place = (data / relpath).read_bytes() if (data / relpath).is_file() else None
        assert damaged in kept or in_place == damaged, f"the damaged {relpath} is neither in place nor in quarantine"
        if not run.acked:
            engine_class(backend).repair(data)
        with open_engine(data) as engine:
            found = dict(engine.scan())
            assert found == EXPECTED, f"{len(set(EXPECTED.items()) ^ set(found.items()))} keys differ after repair"
            assert engine.verify().ok

    return check


DAMAGE = {
    "lsm-manifest": ("lsm", _damage_manifest),
    "lsm-table": ("lsm", _damage_table),
    "cow-leaf": ("cow", _damage_leaf),
    "cow-metas": ("cow", _damage_metas),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("limit", [6, pytest.param(200, marks=pytest.mark.slow)])
def test_repair_survives_power_cuts(tmp_path: Path, damage: str, limit: int) -> None:
    backend, setup = DAMAGE[damage]
    # explore checks every cut image (dropped and torn) and the clean end: at least one cut ran.
    # cow: the meta page (offset 0) landing without the freelist run it points at (first_block)
    first = backend == "cow"
    assert explore(tmp_path, _repair(backend), _check(backend), limit=limit, setup=setup, first_block=first) >= 3


SNAPSHOT = "before-changes"


def _metas_damaged_with_a_snapshot(root: Path) -> None:
    data = root / "data"
    with create_engine(data, "cow", backend_options={"page_size": 1024}, wal_keep_segments=1000) as engine:
        engine.write_batch(list(MODEL.items()))
        engine.flush()
        engine.create_snapshot(SNAPSHOT)
        engine.write_batch(list(CHANGES.items()))  # after the snapshot: the WAL replays them
        engine.flush()
    kit: Any = _cow_kit()
    kit.flip_byte(data, 0, 40)
    kit.flip_byte(data, 1, 40)


def _from_snapshot(run: Run) -> None:
    data = run.root / "data"
    run.sent.append((data / DATA_FILE).read_bytes())
    rebuild_from_snapshot(data, data / "snapshots" / f"{SNAPSHOT}.cow")
    run.ack("rebuilt")


def _check_from_snapshot(run: Run) -> None:
    data = run.root / "data"
    damaged = run.sent[0]
    kept = (
        [path.read_bytes() for path in (data / QUARANTINE_DIR).rglob(DATA_FILE)]
        if (data / QUARANTINE_DIR).is_dir()
        else []
    )
    in_place = (data / DATA_FILE).read_bytes() if (data / DATA_FILE).is_file() else None
    assert damaged in kept or in_place == damaged, "the damaged data.cow is neither in place nor in quarantine"
    if not run.acked:
        rebuild_from_snapshot(data, data / "snapshots" / f"{SNAPSHOT}.cow")
    with open_engine(data) as engine:
        assert dict(engine.scan()) == EXPECTED, "the snapshot and the WAL after it do not give the data back"
        assert engine.verify().ok


@pytest.mark.parametrize("limit", [6, pytest.param(200, marks=pytest.mark.slow)])
def test_cow_rebuild_from_snapshot_survives_power_cuts(tmp_path: Path, limit: int) -> None:
    # explore checks every cut image (dropped and torn) and the clean end: at least one cut ran.
    setup = _metas_damaged_with_a_snapshot
    assert explore(tmp_path, _from_snapshot, _check_from_snapshot, limit=limit, setup=setup) >= 3


def _tables(root: Path) -> None:
    _fill(root / "data", "lsm", {"memtable_bytes": 16384})
    table = max((root / "data" / "sstables").glob("*.sst"), key=lambda path: path.stat().st_size)
    (root / NOTE).write_text(table.name)


def _quarantine_table(run: Run) -> None:
    name = (run.root / NOTE).read_text()
    run.sent.append((run.root / "data" / "sstables" / name).read_bytes())
    quarantine_sstable(run.root / "data", name)
    run.ack(name)


def _check_quarantined_table(run: Run) -> None:
    data, name = run.root / "data", (run.root / NOTE).read_text()
    kept = (
        [path.read_bytes() for path in (data / QUARANTINE_DIR).rglob(name)] if (data / QUARANTINE_DIR).is_dir() else []
    )
    here = data / "sstables" / name
    assert run.sent[0] in kept or (here.is_file() and here.read_bytes() == run.sent[0]), f"{name} lost on its way"
    if run.acked:
        assert run.sent[0] in kept, f"{name} acknowledged as quarantined but not there"
        assert not here.exists(), f"{name} acknowledged as moved but back in sstables/ after the cut"
    listed = [meta.name for meta in load_manifest(data).tables()]
    if run.acked:
        assert name not in listed, "the manifest still names the quarantined table"
    if name in listed:  # never a manifest naming a missing file: the table is still in place
        assert here.is_file(), f"the manifest names {name}, which is not in sstables/"


@pytest.mark.parametrize("limit", [6, pytest.param(200, marks=pytest.mark.slow)])
def test_lsm_table_quarantined_on_request_survives_power_cuts(tmp_path: Path, limit: int) -> None:
    # explore checks every cut image (dropped and torn) and the clean end: at least one cut ran.
    assert explore(tmp_path, _quarantine_table, _check_quarantined_table, limit=limit, setup=_tables) >= 3
