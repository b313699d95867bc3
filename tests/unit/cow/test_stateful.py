"""The COW engine against a dict: a hypothesis state machine with reopen and crash-reopen.

Small pages and a small dirty budget make deep trees, partial commits and intermediate spills
happen within a few steps. A crash is a forked child that opens the data dir, writes (each write
acknowledged in ``sync`` mode), maybe commits, and dies with ``os._exit`` without closing; the
reopened engine must hold every one of its writes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from cow_testkit import create_cow
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engines import open_engine
from engines.base import Engine

KEYS = (st.binary(min_size=1, max_size=6).map(lambda raw: b"k" + raw)
        | st.sampled_from([b"k\x00", b"k\xff", b"ka", b"kb"])
        | st.binary(min_size=600, max_size=1023).map(lambda raw: b"k" + raw))  # longer than 1 KiB pages hold
VALUES = st.binary(max_size=40) | st.binary(min_size=300, max_size=2500)
WRITES = st.lists(st.tuples(KEYS, st.none() | VALUES), min_size=1, max_size=12)


def crash_after(path: Path, writes: list[tuple[bytes, bytes | None]], flush_at: int | None) -> None:
    """In a child process: open, write, maybe flush, then die without closing anything."""
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        status = 1
        try:
            engine = open_engine(path)
            for index, (key, value) in enumerate(writes):
                if value is None:
                    engine.delete(key)
                else:
                    engine.put(key, value)
                if index == flush_at:
                    engine.flush()
            status = 0
        finally:
            os._exit(status)
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


class CowMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="cow-stateful-"))
        self.path = self.root / "data"
        self.engine: Engine = create_cow(self.path, backend={"page_size": 1024, "dirty_budget_bytes": 65536},
                                         wal_segment_bytes=64 * 1024)
        self.model: dict[bytes, bytes] = {}

    def apply(self, writes: list[tuple[bytes, bytes | None]]) -> None:
        for key, value in writes:
            if value is None:
                self.model.pop(key, None)
            else:
                self.model[key] = value

    @rule(key=KEYS, value=VALUES)
    def put(self, key: bytes, value: bytes) -> None:
        self.engine.put(key, value)
        self.model[key] = value

    @rule(key=KEYS)
    def delete(self, key: bytes) -> None:
        self.engine.delete(key)
        self.model.pop(key, None)

    @rule(writes=WRITES)
    def batch(self, writes: list[tuple[bytes, bytes | None]]) -> None:
        self.engine.write_batch(writes)
        self.apply(writes)

    @precondition(lambda self: len(self.model) < 3000)
    @rule(start=st.integers(0, 5000), count=st.integers(1, 800), size=st.sampled_from([8, 120]))
    def bulk(self, start: int, count: int, size: int) -> None:
        writes = [(b"bulk%05d" % i, b"%d" % i * (size // 4)) for i in range(start, start + count)]
        self.engine.write_batch(writes)
        self.apply(writes)  # type: ignore[arg-type]

    @rule(start=st.integers(0, 5000), count=st.integers(1, 800))
    def bulk_delete(self, start: int, count: int) -> None:
        writes = [(b"bulk%05d" % i, None) for i in range(start, start + count)]
        self.engine.write_batch(writes)  # type: ignore[arg-type]
        self.apply(writes)  # type: ignore[arg-type]

    @rule(key=KEYS)
    def get(self, key: bytes) -> None:
        assert self.engine.get(key) == self.model.get(key)

    @rule(start=st.none() | KEYS, end=st.none() | KEYS)
    def scan(self, start: bytes | None, end: bytes | None) -> None:
        wanted = sorted((k, v) for k, v in self.model.items()
                        if (start is None or k >= start) and (end is None or k < end))
        assert list(self.engine.scan(start, end)) == wanted

    @rule()
    def flush(self) -> None:
        self.engine.flush()

    @rule()
    def compact(self) -> None:
        self.engine.compact()

    @rule()
    def reopen(self) -> None:
        self.engine.close()
        self.engine = open_engine(self.path)

    @rule(writes=WRITES, flush_at=st.none() | st.integers(0, 11))
    def crash_reopen(self, writes: list[tuple[bytes, bytes | None]], flush_at: int | None) -> None:
        self.engine.close()
        crash_after(self.path, writes, flush_at)
        self.apply(writes)
        self.engine = open_engine(self.path)

    @invariant()
    def counts_agree(self) -> None:
        assert self.engine.stats().total_keys == len(self.model)

    def teardown(self) -> None:
        try:
            report = self.engine.verify()
            assert dict(self.engine.scan()) == self.model
            assert report.ok, report.problems
        finally:
            self.engine.close()
            shutil.rmtree(self.root, ignore_errors=True)


TestCowMachine = CowMachine.TestCase
TestCowMachine.settings = settings(max_examples=12, stateful_step_count=30, deadline=None,
                                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class LongCowMachine(CowMachine):
    """The same machine, longer, for ``make test-all``."""


TestLongCowMachine = pytest.mark.slow(LongCowMachine.TestCase)
TestLongCowMachine.settings = settings(max_examples=150, stateful_step_count=60, deadline=None,
                                       suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
