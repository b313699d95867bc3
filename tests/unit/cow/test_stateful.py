"""The COW engine against a dict: the contract machine plus crashes in a child, and snapshots.

The contract machine (tests/integration/engines/contract_machine.py) on small pages and a small
dirty budget, with keys longer than a page holds, so that deep trees, partial commits and
intermediate spills happen within a few steps. Added here, what only the COW engine has: a crash
that is a forked child which opens the data dir, writes (each write acknowledged in ``sync``
mode), maybe commits, and dies with ``os._exit`` without closing, after which the reopened engine
must hold every one of its writes; named snapshots that must keep showing the data of the moment
they were taken; and an exact key count after every step.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cow_testkit import create_cow
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule
from integration.engines.contract_machine import Inputs, Writes, contract_machine

from engines import open_engine
from engines.base import Engine

COW_INPUTS = Inputs(
    keys=(
        st.binary(min_size=1, max_size=6).map(lambda raw: b"k" + raw)
        | st.sampled_from([b"k\x00", b"k\xff", b"ka", b"kb"])
        | st.binary(min_size=600, max_size=1023).map(lambda raw: b"k" + raw)
    ),  # longer than 1 KiB pages hold
    values=st.binary(max_size=40) | st.binary(min_size=300, max_size=2500),
    batch_size=12,
    bulk_start=st.integers(0, 5000),
    bulk_count=st.integers(1, 800),
    bulk_repeat=st.sampled_from([2, 30]),
    model_limit=3000,
)
CHILD_WRITES = COW_INPUTS.writes()
MAX_SNAPSHOTS = 4


def crash_after(path: Path, writes: Writes, flush_at: int | None) -> None:
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


class CowMachine(contract_machine(COW_INPUTS)):  # type: ignore[misc]
    backend_label = "cow"

    def __init__(self) -> None:
        super().__init__()
        self.snapshots: dict[str, list[tuple[bytes, bytes]]] = {}  # name -> the rows it must show

    def create(self, path: Path) -> Engine:
        return create_cow(path, backend={"page_size": 1024, "dirty_budget_bytes": 65536}, wal_segment_bytes=64 * 1024)

    @rule(writes=CHILD_WRITES, flush_at=st.none() | st.integers(0, COW_INPUTS.batch_size - 1))
    def crash_in_child(self, writes: Writes, flush_at: int | None) -> None:
        self.engine.close()
        crash_after(self.path, writes, flush_at)
        self.apply(writes)
        self.reopen_at(self.path)

    @precondition(lambda self: len(self.snapshots) < MAX_SNAPSHOTS)
    @rule()
    def take_snapshot(self) -> None:
        name = f"s{len(self.snapshots)}"
        info = self.engine.create_snapshot(name)
        assert (info.key_count, info.lsn) == (len(self.model), self.engine.last_lsn)
        self.snapshots[name] = sorted(self.model.items())

    @invariant()
    def snapshots_keep_their_moment(self) -> None:
        # Checked after every step, not as a rule: a rule would rarely follow the writes that could break it.
        for name, rows in self.snapshots.items():
            with self.engine.open_snapshot(name) as snapshot:
                assert list(snapshot.scan()) == rows, name

    @invariant()
    def counts_agree(self) -> None:
        assert self.engine.stats().total_keys == len(self.model)


TestCowMachine = CowMachine.TestCase
TestCowMachine.settings = settings(
    max_examples=12,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class LongCowMachine(CowMachine):
    """The same machine, longer, for ``make test-all``."""


TestLongCowMachine = pytest.mark.slow(LongCowMachine.TestCase)
TestLongCowMachine.settings = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
