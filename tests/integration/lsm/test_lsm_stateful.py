"""The LSM engine behaves like a dict through flushes, compactions, reopens and crashes.

Tiny memtables and levels make every few writes a flush and every few flushes a compaction, in
the background threads; forced flushes, full and per-level compactions, cache shrinking and
crash-consistent copies (taken while background work runs) are interleaved by hypothesis.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engines import open_engine
from engines.lsm.engine import LsmEngine
from engines.lsm.manifest import load_manifest

from lsm_kit import create_lsm, crash_copy
from support import SLOW

KEYS = st.binary(min_size=1, max_size=6).map(lambda raw: b"k" + raw) | st.sampled_from([b"k\x00", b"k\xff", b"ka"])
VALUES = st.binary(max_size=40) | st.binary(min_size=600, max_size=3000)


class LsmMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="lsm-stateful-"))
        self.generation = itertools.count(1)
        self.path = self.root / "data0"
        self.engine: LsmEngine = create_lsm(self.path, durability="sync", wal_segment_bytes=64 * 1024)
        self.model: dict[bytes, bytes] = {}

    def reopen_at(self, path: Path) -> None:
        engine = open_engine(path)
        assert isinstance(engine, LsmEngine)
        self.engine = engine
        self.path = path

    @rule(key=KEYS, value=VALUES)
    def put(self, key: bytes, value: bytes) -> None:
        self.engine.put(key, value)
        self.model[key] = value

    @rule(key=KEYS)
    def delete(self, key: bytes) -> None:
        self.engine.delete(key)
        self.model.pop(key, None)

    @rule(entries=st.lists(st.tuples(KEYS, st.none() | VALUES), min_size=1, max_size=25))
    def batch(self, entries: list[tuple[bytes, bytes | None]]) -> None:
        self.engine.write_batch(entries)
        for key, value in entries:
            if value is None:
                self.model.pop(key, None)
            else:
                self.model[key] = value

    @precondition(lambda self: len(self.model) < 500)
    @rule(count=st.integers(1, 400), width=st.integers(10, 300))
    def bulk(self, count: int, width: int) -> None:
        entries = [(b"bulk%05d" % i, b"%d" % i * (width // 3 + 1)) for i in range(count)]
        self.engine.write_batch(entries)
        self.model.update(entries)

    @rule(key=KEYS)
    def get(self, key: bytes) -> None:
        assert self.engine.get(key) == self.model.get(key)

    @rule(start=st.none() | KEYS, end=st.none() | KEYS)
    def scan(self, start: bytes | None, end: bytes | None) -> None:
        expected = sorted((k, v) for k, v in self.model.items()
                          if (start is None or k >= start) and (end is None or k < end))
        assert list(self.engine.scan(start, end)) == expected

    @rule()
    def flush(self) -> None:
        self.engine.flush()

    @rule()
    def compact(self) -> None:
        self.engine.compact()

    @rule(level=st.integers(0, 2))
    def compact_level(self, level: int) -> None:
        self.engine.compact_level(level)

    @rule(size=st.sampled_from([0, 4096, 1 << 20]))
    def reduce_cache(self, size: int) -> None:
        self.engine.reduce_cache(size)

    @rule()
    def reopen(self) -> None:
        self.engine.close()
        self.reopen_at(self.path)

    @rule()
    def crash_reopen(self) -> None:
        target = self.root / f"data{next(self.generation)}"
        crash_copy(self.path, target)  # background flushes and compactions may be running
        self.engine.close()
        self.reopen_at(target)

    @rule()
    def read_only_view(self) -> None:
        self.engine._wal.flush()  # type: ignore[union-attr]
        target = self.root / f"ro{next(self.generation)}"
        crash_copy(self.path, target)
        with open_engine(target, mode="ro") as reader:
            assert list(reader.scan()) == sorted(self.model.items())

    @invariant()
    def manifest_names_only_existing_tables(self) -> None:
        manifest = load_manifest(self.path)
        for meta in manifest.tables():
            assert (self.path / meta.relative_path).exists(), meta.name

    @invariant()
    def sizes_agree(self) -> None:
        assert sum(1 for _ in self.engine.scan()) == len(self.model)

    def teardown(self) -> None:
        try:
            self.engine.wait_for_background()
            report = self.engine.verify()
            assert report.ok, report.problems
            assert self.engine.stats().total_keys == len(self.model)
            self.engine.close()
            self.reopen_at(self.path)
            assert list(self.engine.scan()) == sorted(self.model.items())
            self.engine.close()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


LsmMachine.TestCase.settings = settings(max_examples=80 if SLOW else 15, stateful_step_count=40, deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestLsmStateful = LsmMachine.TestCase
