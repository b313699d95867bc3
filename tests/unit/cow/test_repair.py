"""Repair primitives: rollback to the older meta, freelist rebuild, salvage, rebuild from a snapshot.

Each keeps the file it replaces in quarantine and says what it did; with the WAL still present,
every acknowledged write is back after the repair and a reopen.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cow_testkit import create_cow, flip_byte, newest_meta, page_size_of, pages_of_type, tree_pages

from engines import open_engine
from engines.cow.engine import CowEngine
from engines.cow.page import DATA_FILE, HEADER, PageType
from engines.cow.repair import rebuild_freelist, rebuild_from_snapshot, rollback_to_older_meta, salvage
from engines.errors import CorruptionError, LockedError, SafetyRefusal


@pytest.fixture
def data_dir(tmp_path: Path) -> tuple[Path, dict[bytes, bytes]]:
    """A closed data dir whose newest commit rewrote part of the tree; the model of its content."""
    path = tmp_path / "d"
    model = {b"key%05d" % i: b"first-%05d" % i for i in range(4000)}
    with create_cow(path, backend={"page_size": 1024}) as engine:
        engine.write_batch(list(model.items()))
        engine.create_snapshot("early")
        engine.flush()
        changes = {b"key%05d" % i: b"second-%05d" % i for i in range(1000, 1400)}
        engine.write_batch(list(changes.items()))
        model.update(changes)
    return path, model


def newest_leaf(path: Path) -> int:
    """A leaf page written by the newest commit (so the older meta's tree does not use it)."""
    meta = newest_meta(path)
    size = page_size_of(path)
    with open(path / DATA_FILE, "rb") as handle:
        for page in tree_pages(path):
            handle.seek(page * size)
            header = HEADER.unpack(handle.read(HEADER.size))
            if header[1] == PageType.LEAF and header[7] == meta.txid:
                return page
    raise AssertionError("the newest commit wrote no leaf")


def assert_holds(path: Path, model: dict[bytes, bytes]) -> None:
    with open_engine(path) as engine:
        assert dict(engine.scan()) == model
        assert engine.verify().ok


def test_rollback_to_the_older_meta_and_replay_the_wal(data_dir: tuple[Path, dict[bytes, bytes]]) -> None:
    path, model = data_dir
    flip_byte(path, newest_leaf(path))
    with open_engine(path, mode="ro") as engine:
        assert not engine.verify().ok
    damaged = (path / DATA_FILE).read_bytes()
    report = rollback_to_older_meta(path)
    assert report.ok and report.lost == []
    assert Path(report.safety_copy or "").read_bytes() == damaged  # kept, not deleted
    assert any("replays the WAL" in action for action in report.actions)
    assert_holds(path, model)


def test_rollback_is_refused_without_an_older_state(tmp_path: Path) -> None:
    create_cow(tmp_path / "d").close()  # created and closed: both metas hold the same empty tree
    with pytest.raises(SafetyRefusal):
        rollback_to_older_meta(tmp_path / "d")


def test_rollback_refuses_to_lose_what_the_wal_no_longer_holds(data_dir: tuple[Path, dict[bytes, bytes]]) -> None:
    path, _model = data_dir
    with open_engine(path) as engine:  # one more commit; then pretend the WAL was archived away
        engine.put(b"late", b"1")
    for segment in (path / "wal").iterdir():
        segment.rename(path / segment.name)  # moved aside, as an archiver would
    with pytest.raises(SafetyRefusal, match="would lose LSNs"):
        rollback_to_older_meta(path)


def test_rebuild_freelist_mends_a_corrupt_freelist(data_dir: tuple[Path, dict[bytes, bytes]]) -> None:
    path, model = data_dir
    flip_byte(path, newest_meta(path).freelist)
    with pytest.raises(CorruptionError):
        open_engine(path).close()
    report = rebuild_freelist(path)
    assert report.keys_after == len(model)
    assert_holds(path, model)


def test_salvage_fills_a_lost_leaf_from_older_pages_then_the_wal_makes_it_exact(
    data_dir: tuple[Path, dict[bytes, bytes]],
) -> None:
    path, model = data_dir
    flip_byte(path, newest_leaf(path))
    report = salvage(path)
    assert any("unreadable" in line for line in report.lost)  # the page and its key range
    assert any("recovered from leaf pages outside the tree" in line for line in report.lost)
    assert report.quarantined and Path(report.quarantined[0]).exists()
    assert_holds(path, model)  # WAL replay from LSN 1 restores the newest values exactly


def test_salvage_without_any_meta_reads_every_leaf(data_dir: tuple[Path, dict[bytes, bytes]]) -> None:
    path, model = data_dir
    flip_byte(path, 0, 60)
    flip_byte(path, 1, 60)
    with pytest.raises(CorruptionError):
        open_engine(path).close()
    report = salvage(path)
    assert any("no valid meta" in line for line in report.lost)
    assert report.keys_after == len(model)
    assert_holds(path, model)


def test_salvage_reports_what_the_wal_cannot_bring_back(data_dir: tuple[Path, dict[bytes, bytes]]) -> None:
    path, model = data_dir
    with open_engine(path) as engine:
        engine.flush()
    for segment in (path / "wal").iterdir():
        segment.rename(path / segment.name)  # the WAL is gone (archived elsewhere)
    flip_byte(path, pages_of_type(path, PageType.LEAF)[-1])
    report = salvage(path)
    assert not report.ok and any("unreadable" in line for line in report.lost)
    assert report.keys_after is not None and len(model) - 100 < report.keys_after <= len(model)
    with open_engine(path) as engine:
        rows = dict(engine.scan())
        assert set(rows) <= set(model)
        # Values come from the tree, or (for the lost leaf) from an older page of it.
        assert all(model[key] == value or value == b"first-" + key[3:] for key, value in rows.items())
        assert engine.verify().ok


def test_rebuild_from_a_snapshot_and_replay_the_wal(data_dir: tuple[Path, dict[bytes, bytes]]) -> None:
    path, model = data_dir
    flip_byte(path, 0, 60)
    flip_byte(path, 1, 60)
    report = rebuild_from_snapshot(path, path / "snapshots" / "early.cow")
    assert report.ok and report.safety_copy
    assert_holds(path, model)


def test_repair_chooses_the_least_destructive_remedy(data_dir: tuple[Path, dict[bytes, bytes]], tmp_path: Path) -> None:
    path, model = data_dir
    clean = CowEngine.repair(path)
    assert clean.actions == [f"{DATA_FILE} verified clean: nothing to repair"] and clean.quarantine is None
    flip_byte(path, newest_leaf(path))
    rolled = CowEngine.repair(path)
    assert any("rolled back" in action for action in rolled.actions)
    # The report is the data dir the next user sees: the rollback's WAL replay is done and counted.
    assert rolled.keys_after == len(model) and rolled.lost == []
    assert rolled.recovered_lsn_ranges and rolled.recovered_lsn_ranges[0][1] >= 2
    assert_holds(path, model)
    flip_byte(path, 0, 60)
    flip_byte(path, 1, 60)
    salvaged = CowEngine.repair(path)
    assert any("salvaged" in action for action in salvaged.actions)
    assert_holds(path, model)


def test_repair_refuses_a_data_dir_in_use(data_dir: tuple[Path, dict[bytes, bytes]]) -> None:
    path, _model = data_dir
    with open_engine(path):
        with pytest.raises(LockedError):
            salvage(path)
        with pytest.raises(LockedError):
            rollback_to_older_meta(path)


def test_salvage_replays_from_the_first_lsn_the_wal_still_holds(tmp_path: Path) -> None:
    path = tmp_path / "d"
    with create_cow(path, wal_segment_bytes=64 * 1024) as engine:
        for round_number in range(6):
            engine.write_batch([(b"k%04d" % i, b"%d" % round_number * 300) for i in range(300)])
            engine.flush()  # seals nothing by itself, but segments fill and get recycled
        engine.put(b"last", b"1")
    first = min(int(segment.stem) for segment in (path / "wal").iterdir())
    assert first > 1  # recycled: the early LSNs are only in the tree now
    flip_byte(path, 0, 60)
    flip_byte(path, 1, 60)
    report = salvage(path)
    assert any(f"before LSN {first}" in action for action in report.actions)
    with open_engine(path) as engine:
        assert engine.get(b"last") == b"1" and engine.get(b"k0299") == b"5" * 300
        assert engine.verify().ok
