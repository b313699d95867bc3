"""Every backend behaves like a dict: a hypothesis state machine with reopen and crash-reopen.

A crash is a crash-consistent copy of the open data dir (the bytes the OS holds at that instant,
as after SIGKILL); the copy is opened and must hold every write, since all of them were
acknowledged in ``sync`` mode. The real SIGKILL test is test_crash_sigkill.py.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engines import create_engine, open_engine

from support import ALL_BACKENDS, SLOW, available_backends, crash_copy

KEYS = st.binary(min_size=1, max_size=12).map(lambda raw: b"k" + raw) | st.sampled_from(
    [b"k\x00", b"k\xff", b"ka", b"kb", b"kz"])
VALUES = st.binary(max_size=64) | st.binary(min_size=3000, max_size=9000)


def make_machine(backend: str) -> type[RuleBasedStateMachine]:
    class EngineMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.root = Path(tempfile.mkdtemp(prefix=f"stateful-{backend}-"))
            self.generation = itertools.count()
            self.path = self.root / "data0"
            self.engine = create_engine(self.path, backend=backend, durability="sync",
                                        wal_segment_bytes=64 * 1024)
            self.model: dict[bytes, bytes] = {}

        @rule(key=KEYS, value=VALUES)
        def put(self, key: bytes, value: bytes) -> None:
            self.engine.put(key, value)
            self.model[key] = value

        @rule(key=KEYS)
        def delete(self, key: bytes) -> None:
            self.engine.delete(key)
            self.model.pop(key, None)

        @rule(entries=st.lists(st.tuples(KEYS, st.none() | VALUES), min_size=1, max_size=20))
        def batch(self, entries: list[tuple[bytes, bytes | None]]) -> None:
            self.engine.write_batch(entries)
            for key, value in entries:
                if value is None:
                    self.model.pop(key, None)
                else:
                    self.model[key] = value

        @rule(key=KEYS)
        def get(self, key: bytes) -> None:
            assert self.engine.get(key) == self.model.get(key)

        @rule(start=st.none() | KEYS, end=st.none() | KEYS)
        def scan(self, start: bytes | None, end: bytes | None) -> None:
            expected = sorted((k, v) for k, v in self.model.items()
                              if (start is None or k >= start) and (end is None or k < end))
            assert list(self.engine.scan(start, end)) == expected

        @rule(prefix=st.binary(max_size=2).map(lambda raw: b"k" + raw))
        def scan_prefix(self, prefix: bytes) -> None:
            expected = sorted((k, v) for k, v in self.model.items() if k.startswith(prefix))
            assert list(self.engine.scan(prefix=prefix)) == expected

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

        @rule()
        def crash_reopen(self) -> None:
            target = self.root / f"data{next(self.generation) + 1}"
            crash_copy(self.path, target)
            self.engine.close()
            self.engine = open_engine(target)
            self.path = target

        @precondition(lambda self: len(self.model) < 400)
        @rule(count=st.integers(1, 300))
        def bulk(self, count: int) -> None:
            entries = [(b"bulk%06d" % i, b"v%d" % i * 10) for i in range(count)]
            self.engine.write_batch(entries)
            self.model.update(entries)

        @invariant()
        def sizes_agree(self) -> None:
            assert sum(1 for _ in self.engine.scan()) == len(self.model)

        def teardown(self) -> None:
            report = self.engine.verify()
            self.engine.close()
            shutil.rmtree(self.root, ignore_errors=True)
            assert report.ok, report.problems

    EngineMachine.__name__ = f"EngineMachine_{backend}"
    return EngineMachine


_SETTINGS = settings(max_examples=60 if SLOW else 12, stateful_step_count=40, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])

for _backend in ALL_BACKENDS:
    _machine = make_machine(_backend)
    _case = _machine.TestCase
    _case.settings = _SETTINGS
    if _backend not in available_backends():
        _case = pytest.mark.skip(reason=f"{_backend} backend not built yet")(_case)
    globals()[f"TestStateful_{_backend}"] = _case
