"""The COW engine through the engine contract: writes, reads, durability points, options, stats."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest
from cow_testkit import create_cow, newest_meta

from engines import create_engine, open_engine
from engines.cow.engine import CowEngine
from engines.cow.page import DATA_FILE
from engines.errors import InvalidArgumentError, ReadOnlyError, UnsupportedFormatError
from engines.marker import read_marker


def test_create_and_open_through_the_registry(tmp_path: Path) -> None:
    with create_engine(tmp_path / "d", backend="cow") as engine:
        assert isinstance(engine, CowEngine)
        engine.put(b"a", b"1")
        engine.write_batch([(b"b", b"2"), (b"c", b"3"), (b"a", None)])
        engine.delete(b"c")
    assert (tmp_path / "d" / DATA_FILE).is_file()
    with open_engine(tmp_path / "d") as engine:
        assert isinstance(engine, CowEngine)
        assert list(engine.scan()) == [(b"b", b"2")]
        assert engine.get(b"a") is None


def test_scans_are_ordered_with_bounds_and_prefixes(tmp_path: Path) -> None:
    with create_cow(tmp_path / "d", backend={"page_size": 1024}) as engine:
        keys = [b"user:%04d" % i for i in range(2000)] + [b"item:%04d" % i for i in range(500)]
        engine.write_batch([(key, key[::-1]) for key in keys])
        engine.flush()
        engine.write_batch([(b"user:%04d" % i, None) for i in range(0, 2000, 3)])  # buffered, not committed
        live = sorted((key, key[::-1]) for key in keys if not (key.startswith(b"user:") and int(key[5:]) % 3 == 0))
        assert list(engine.scan()) == live
        assert list(engine.scan(prefix=b"item:")) == [row for row in live if row[0].startswith(b"item:")]
        assert list(engine.scan(b"user:0100", b"user:0110")) == [
            row for row in live if b"user:0100" <= row[0] < b"user:0110"
        ]
        assert list(engine.scan(b"zzz")) == []


def test_a_batch_with_repeated_keys_keeps_the_last(tmp_path: Path) -> None:
    with create_cow(tmp_path / "d") as engine:
        engine.write_batch([(b"k", b"1"), (b"k", None), (b"k", b"3")])
        engine.write_batch([(b"j", b"1"), (b"j", None)])
        assert engine.get(b"k") == b"3" and engine.get(b"j") is None
        engine.flush()
        assert engine.get(b"k") == b"3" and engine.get(b"j") is None


def test_large_values_round_trip_through_overflow_pages(tmp_path: Path) -> None:
    big = bytes(range(256)) * 300
    with create_cow(tmp_path / "d") as engine:
        engine.put(b"big", big)
        engine.put(b"huge", b"h" * (3 * 2**20))
        engine.flush()
        engine.put(b"big", big[::-1])  # replaces the overflow run
        engine.flush()
    with open_engine(tmp_path / "d", mode="ro") as engine:
        assert engine.get(b"big") == big[::-1]
        assert engine.get(b"huge") == b"h" * (3 * 2**20)
        assert engine.verify().ok


def test_flush_commits_the_tree_up_to_the_last_lsn(tmp_path: Path) -> None:
    with create_cow(tmp_path / "d") as engine:
        for i in range(50):
            engine.put(b"k%d" % i, b"v")
        assert newest_meta(tmp_path / "d").lsn == 0  # not committed on every write: the WAL has them
        engine.flush()
        assert newest_meta(tmp_path / "d").lsn == engine.last_lsn == 50


def test_the_dirty_budget_forces_commits_and_the_wal_leads_them(tmp_path: Path) -> None:
    with create_cow(tmp_path / "d", durability="async", backend={"dirty_budget_bytes": 65536}) as engine:
        for i in range(400):
            engine.write_batch([(b"k%03d-%03d" % (i, j), b"x" * 60) for j in range(10)])
            assert engine._wal is not None
            assert newest_meta(tmp_path / "d").lsn <= engine._wal.durable_lsn  # WAL first, always
        assert engine.stats().details["commits"] >= 5
        assert len(engine._tree.buffer) < 4000


def test_stats_count_keys_exactly_and_report_the_cache(tmp_path: Path) -> None:
    with create_cow(tmp_path / "d", cache_bytes=1 << 20) as engine:
        engine.write_batch([(b"k%05d" % i, b"v" * 30) for i in range(3000)])
        engine.flush()
        engine.write_batch([(b"k%05d" % i, None) for i in range(100)] + [(b"new", b"1"), (b"k00200", b"x")])
        stats = engine.stats()
        assert stats.total_keys == 2901
        assert stats.details["cache_capacity_bytes"] == 1 << 20
        assert 0 < stats.memory_usage_bytes < 4 << 20
        assert stats.details["page_size"] == 4096
    with open_engine(tmp_path / "d", mode="ro") as engine:
        assert engine.stats().total_keys == 2901


def test_read_only_opens_see_unflushed_writes_and_refuse_to_write(tmp_path: Path) -> None:
    engine = create_cow(tmp_path / "d")
    engine.put(b"a", b"1")
    engine.flush()
    engine.put(b"b", b"2")  # only in the WAL
    engine.close()
    with open_engine(tmp_path / "d", mode="ro") as reader:
        assert dict(reader.scan()) == {b"a": b"1", b"b": b"2"}
        with pytest.raises(ReadOnlyError):
            reader.put(b"c", b"3")
        with pytest.raises(ReadOnlyError):
            reader.create_snapshot("nope")  # type: ignore[attr-defined]


def test_page_size_and_low_memory_options_are_kept_in_the_marker(tmp_path: Path) -> None:
    with create_cow(tmp_path / "d", backend={"page_size": 16384}, low_memory=True) as engine:
        engine.write_batch([(b"k%04d" % i, b"v") for i in range(500)])
        assert engine.stats().details["max_keys_per_node"] == 32
        assert engine.stats().details["cache_capacity_bytes"] == 8 * 2**20
    marker = read_marker(tmp_path / "d")
    assert marker is not None and marker.options["backend"] == {"page_size": 16384}
    with open_engine(tmp_path / "d") as engine:
        assert engine.stats().details["page_size"] == 16384
        assert len(list(engine.scan())) == 500
        assert engine.verify().ok


@pytest.mark.parametrize(
    "backend",
    [
        {"page_size": 3000},
        {"colour": "blue"},
        {"max_keys_per_node": 2},
        {"snapshots": "yes"},
        {"dirty_budget_bytes": 10},
    ],
)
def test_bad_backend_options_are_refused(tmp_path: Path, backend: dict[str, object]) -> None:
    with pytest.raises(InvalidArgumentError):
        create_cow(tmp_path / "d", backend=backend)


def test_without_a_marker_the_page_size_comes_from_the_file(tmp_path: Path) -> None:
    with create_cow(tmp_path / "d", backend={"page_size": 16384}) as engine:
        engine.put(b"a", b"1")
    (tmp_path / "d" / "drconsole.json").rename(tmp_path / "marker.json")  # lost marker
    with open_engine(tmp_path / "d", mode="ro") as engine:
        assert engine.get(b"a") == b"1" and engine.stats().details["page_size"] == 16384


def test_opening_with_another_page_size_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    create_cow(tmp_path / "d", backend={"page_size": 4096}).close()
    before = (tmp_path / "d" / DATA_FILE).read_bytes()
    from engines.options import EngineOptions

    with pytest.raises(UnsupportedFormatError, match="page size mismatch.*4096.*8192"):
        CowEngine(tmp_path / "d", mode="ro", options=EngineOptions(backend={"page_size": 8192}))
    assert (tmp_path / "d" / DATA_FILE).read_bytes() == before


def test_compaction_rewrites_a_mostly_free_file_smaller(tmp_path: Path) -> None:
    with create_cow(tmp_path / "d") as engine:
        engine.write_batch([(b"k%05d" % i, b"v" * 100) for i in range(20000)])
        engine.flush()
        engine.write_batch([(b"k%05d" % i, None) for i in range(20000) if i % 10])
        engine.flush()
        before = (tmp_path / "d" / DATA_FILE).stat().st_size
        engine.compact()
        after = (tmp_path / "d" / DATA_FILE).stat().st_size
        assert after < before / 3
        assert len(list(engine.scan())) == 2000 and engine.get(b"k00010") == b"v" * 100
        engine.put(b"after", b"compaction")
        assert engine.verify().ok
    with open_engine(tmp_path / "d") as engine:
        assert engine.get(b"after") == b"compaction" and engine.stats().total_keys == 2001


def test_cache_can_shrink_and_clear_at_run_time(tmp_path: Path) -> None:
    with create_cow(tmp_path / "d") as engine:
        engine.write_batch([(b"k%05d" % i, b"v" * 100) for i in range(5000)])
        engine.flush()
        assert sum(1 for _ in engine.scan()) == 5000
        engine.set_cache_bytes(64 * 1024)
        assert engine.stats().details["cache_bytes"] <= 64 * 1024
        engine.clear_cache()
        assert engine.stats().details["cache_bytes"] == 0
        assert engine.get(b"k04999") == b"v" * 100


def test_readers_run_while_a_writer_commits(tmp_path: Path) -> None:
    engine = create_cow(tmp_path / "d", durability="async", backend={"dirty_budget_bytes": 65536})
    engine.write_batch([(b"k%05d" % i, b"0") for i in range(5000)])
    problems: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            rows = list(engine.scan(b"k01000", b"k01100"))
            if [key for key, _ in rows] != [b"k%05d" % i for i in range(1000, 1100)]:
                problems.append(f"scan saw {len(rows)} rows")
            if engine.get(b"k04321") is None:
                problems.append("get lost a key")

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    for round_number in range(1, 30):
        engine.write_batch([(b"k%05d" % i, b"%d" % round_number) for i in range(0, 5000, 7)])
    stop.set()
    for thread in readers:
        thread.join()
    assert not problems, problems[:3]
    assert engine.stats().details["commits"] > 3
    assert engine.verify().ok
    engine.close()


def test_keys_longer_than_a_page_still_make_a_tree(tmp_path: Path) -> None:
    """1 KiB pages, keys up to the 1 KiB limit: nodes span pages, branches still shrink level by level."""
    rng = random.Random(1)
    model: dict[bytes, bytes] = {}
    with create_cow(tmp_path / "d", backend={"page_size": 1024, "dirty_budget_bytes": 65536}) as engine:
        for i in range(200):
            key = rng.randbytes(1) + b"%04d" % i + b"x" * rng.choice([0, 500, 1019])
            value = rng.randbytes(rng.choice([0, 10, 256, 257, 2000]))
            engine.put(key, value)
            model[key] = value
            if i % 37 == 0:
                engine.flush()
        for key in list(model)[::3]:
            engine.delete(key)
            del model[key]
    with open_engine(tmp_path / "d") as engine:
        assert dict(engine.scan()) == model
        assert engine.verify().ok
    from engines.cow.build import build_file

    build_file(tmp_path / "packed.cow", sorted(model.items()), page_size=1024, lsn=0)  # the bulk path too
