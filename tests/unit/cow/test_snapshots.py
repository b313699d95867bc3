"""Snapshots and checkpoints: point-in-time, isolated from later writes, taken while writes go on."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from cow_testkit import create_cow

from engines import open_engine
from engines.cow.page import DATA_FILE
from engines.cow.snapshots import list_snapshots, open_snapshot
from engines.errors import InvalidArgumentError


def test_a_snapshot_does_not_change_under_later_writes(tmp_path: Path) -> None:
    with create_cow(tmp_path / "d") as engine:
        engine.write_batch([(b"k%04d" % i, b"old") for i in range(3000)])
        engine.put(b"unflushed", b"in the WAL only")  # a snapshot commits first: it is included
        info = engine.create_snapshot("before-change")
        assert info.lsn == engine.last_lsn and info.key_count == 3001
        engine.write_batch([(b"k%04d" % i, b"new") for i in range(3000)])
        engine.write_batch([(b"k%04d" % i, None) for i in range(0, 3000, 2)])
        engine.flush()
        engine.compact()
        with engine.open_snapshot("before-change") as snapshot:
            rows = list(snapshot.scan())
            assert len(rows) == 3001 and all(value == b"old" for key, value in rows if key.startswith(b"k"))
            assert snapshot.get(b"unflushed") == b"in the WAL only"
            assert snapshot.meta.lsn == info.lsn
        assert engine.get(b"k0001") == b"new" and engine.get(b"k0000") is None
    names = [snapshot.name for snapshot in list_snapshots(tmp_path / "d")]
    assert names == ["before-change"]


def test_snapshot_names_must_be_plain_and_new(tmp_path: Path) -> None:
    with create_cow(tmp_path / "d") as engine:
        engine.create_snapshot("one")
        for bad in ("../escape", "a/b", "", ".hidden", "x" * 200):
            with pytest.raises(InvalidArgumentError):
                engine.create_snapshot(bad)
        with pytest.raises(InvalidArgumentError, match="already exists"):
            engine.create_snapshot("one")
        assert engine.create_snapshot().name  # a default, time-stamped name
        assert len(engine.list_snapshots()) == 2


def test_the_low_memory_profile_turns_snapshots_off(tmp_path: Path) -> None:
    with create_cow(tmp_path / "d", low_memory=True) as engine:
        with pytest.raises(InvalidArgumentError, match="low-memory"):
            engine.create_snapshot("x")
        engine.checkpoint(tmp_path / "copy")  # copies outside the data dir still work
    assert not list((tmp_path / "d" / "snapshots").iterdir())


def test_a_checkpoint_taken_during_writes_is_consistent(tmp_path: Path) -> None:
    engine = create_cow(tmp_path / "d", durability="async", backend={"dirty_budget_bytes": 65536})
    engine.write_batch([(b"k%05d" % i, b"0" * 50) for i in range(20000)])
    stop = threading.Event()
    written = [0]

    def write() -> None:
        round_number = 0
        while not stop.is_set():
            round_number += 1
            # Every batch sets all its keys to one value: a torn copy would mix rounds in a batch.
            engine.write_batch([(b"k%05d" % i, b"%d" % round_number * 50) for i in range(round_number % 7, 20000, 97)])
            written[0] = round_number

    writer = threading.Thread(target=write)
    writer.start()
    lsns = []
    try:
        for index in range(3):
            lsns.append(engine.checkpoint(tmp_path / f"cp{index}"))
    finally:
        stop.set()
        writer.join()
    assert written[0] > 0
    engine.close()
    for index, lsn in enumerate(lsns):
        with open_engine(tmp_path / f"cp{index}", mode="ro") as copy:
            assert copy.last_lsn == lsn
            assert copy.verify().ok
            assert sum(1 for _ in copy.scan()) == 20000


def test_snapshot_files_stand_alone(tmp_path: Path) -> None:
    with create_cow(tmp_path / "d") as engine:
        engine.put(b"a", b"1")
        path = Path(engine.create_snapshot("s").path)
    copy = tmp_path / "elsewhere.cow"
    copy.write_bytes(path.read_bytes())
    with open_snapshot(copy) as snapshot:
        assert snapshot.get(b"a") == b"1"
    assert (tmp_path / "d" / DATA_FILE).exists()
