"""The engine contract as a hypothesis state machine: every backend behaves like a dict.

``contract_machine(inputs)`` builds the machine whose rules hold for every backend: writes,
batches, reads, scans, flush, compact, reopen, crash-reopen and checkpoint, checked against a
dict after every step and at the end (verify, then reopen). The contract suite
(test_contract_stateful.py) runs it on each backend; a backend's own suite subclasses it with
inputs aimed at its edges (page size, memtable size) and adds only the rules that backend alone
has. A crash is a crash-consistent copy of the open data dir (the bytes the OS holds at that
instant, as after SIGKILL); every write was acknowledged in ``sync`` mode, so the copy must hold
all of them.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from hypothesis.strategies import SearchStrategy
from support import crash_copy

from engines import open_engine
from engines.base import Engine

__all__ = ["Inputs", "Writes", "contract_machine", "KEYS", "VALUES"]

Writes = list[tuple[bytes, bytes | None]]  # (key, value); None deletes

KEYS = st.binary(min_size=1, max_size=12).map(lambda raw: b"k" + raw) | st.sampled_from(
    [b"k\x00", b"k\xff", b"ka", b"kb", b"kz"]
)
VALUES = st.binary(max_size=64) | st.binary(min_size=3000, max_size=9000)


@dataclass(frozen=True)
class Inputs:
    """What the rules draw: a backend sizes them so a few steps reach its splits, flushes and merges."""

    keys: SearchStrategy[bytes] = KEYS
    values: SearchStrategy[bytes] = VALUES
    batch_size: int = 20  # entries in one write_batch at the most
    bulk_start: SearchStrategy[int] = field(default_factory=lambda: st.just(0))  # first bulk key number
    bulk_count: SearchStrategy[int] = field(default_factory=lambda: st.integers(1, 300))
    bulk_repeat: SearchStrategy[int] = field(default_factory=lambda: st.just(10))  # bulk value = b"v<i>" * repeat
    model_limit: int = 400  # bulk writes stop once the store holds this many keys

    def writes(self) -> SearchStrategy[Writes]:
        return st.lists(st.tuples(self.keys, st.none() | self.values), min_size=1, max_size=self.batch_size)


def contract_machine(inputs: Inputs) -> type[RuleBasedStateMachine]:
    """The contract machine drawing ``inputs``; subclass it and define ``create`` (and ``backend_label``)."""

    class ContractMachine(RuleBasedStateMachine):
        backend_label = "engine"  # names the temporary directory

        def __init__(self) -> None:
            super().__init__()
            self.root = Path(tempfile.mkdtemp(prefix=f"stateful-{self.backend_label}-"))
            self.generation = itertools.count(1)
            self.path = self.root / "data0"
            self.engine: Engine = self.create(self.path)
            self.model: dict[bytes, bytes] = {}

        # ------------------------------------------------------------ what a backend defines
        def create(self, path: Path) -> Engine:
            """A new data dir at ``path``, open read-write in ``sync`` durability."""
            raise NotImplementedError

        def settle(self) -> None:
            """Bring the engine to rest before the final checks (a backend with background work waits)."""

        # ------------------------------------------------------------ helpers for the rules
        def apply(self, writes: Writes) -> None:
            """What ``writes`` do to the model once the engine has acknowledged them."""
            for key, value in writes:
                if value is None:
                    self.model.pop(key, None)
                else:
                    self.model[key] = value

        def fresh_dir(self, stem: str) -> Path:
            return self.root / f"{stem}{next(self.generation)}"

        def reopen_at(self, path: Path) -> None:
            self.engine = open_engine(path)
            self.path = path

        def bulk_writes(self, start: int, count: int, repeat: int | None) -> Writes:
            """``count`` numbered keys from ``start``; ``repeat`` None deletes them."""
            return [
                (b"bulk%05d" % i, None if repeat is None else b"v%d" % i * repeat) for i in range(start, start + count)
            ]

        # ------------------------------------------------------------ writes
        @rule(key=inputs.keys, value=inputs.values)
        def put(self, key: bytes, value: bytes) -> None:
            self.engine.put(key, value)
            self.model[key] = value

        @rule(key=inputs.keys)
        def delete(self, key: bytes) -> None:
            self.engine.delete(key)
            self.model.pop(key, None)

        @rule(writes=inputs.writes())
        def batch(self, writes: Writes) -> None:
            self.engine.write_batch(writes)
            self.apply(writes)

        @precondition(lambda self: len(self.model) < inputs.model_limit)
        @rule(start=inputs.bulk_start, count=inputs.bulk_count, repeat=inputs.bulk_repeat)
        def bulk(self, start: int, count: int, repeat: int) -> None:
            writes = self.bulk_writes(start, count, repeat)
            self.engine.write_batch(writes)
            self.apply(writes)

        @rule(start=inputs.bulk_start, count=inputs.bulk_count)
        def bulk_delete(self, start: int, count: int) -> None:
            writes = self.bulk_writes(start, count, None)
            self.engine.write_batch(writes)
            self.apply(writes)

        # ------------------------------------------------------------ reads
        @rule(key=inputs.keys)
        def get(self, key: bytes) -> None:
            assert self.engine.get(key) == self.model.get(key)

        @rule(start=st.none() | inputs.keys, end=st.none() | inputs.keys)
        def scan(self, start: bytes | None, end: bytes | None) -> None:
            expected = sorted(
                (k, v) for k, v in self.model.items() if (start is None or k >= start) and (end is None or k < end)
            )
            assert list(self.engine.scan(start, end)) == expected

        @rule(prefix=st.binary(max_size=2).map(lambda raw: b"k" + raw))
        def scan_prefix(self, prefix: bytes) -> None:
            expected = sorted((k, v) for k, v in self.model.items() if k.startswith(prefix))
            assert list(self.engine.scan(prefix=prefix)) == expected

        # ------------------------------------------------------------ maintenance, restarts, copies
        @rule()
        def flush(self) -> None:
            self.engine.flush()

        @rule()
        def compact(self) -> None:
            self.engine.compact()

        @rule()
        def reopen(self) -> None:
            self.engine.close()
            self.reopen_at(self.path)

        @rule()
        def crash_reopen(self) -> None:
            target = self.fresh_dir("data")
            crash_copy(self.path, target)  # a backend's background work may be running meanwhile
            self.engine.close()
            self.reopen_at(target)

        @rule()
        def checkpoint(self) -> None:
            target = self.fresh_dir("checkpoint")
            self.engine.checkpoint(target)
            with open_engine(target, mode="ro") as copy:
                assert list(copy.scan()) == sorted(self.model.items())
                report = copy.verify()
                assert report.ok, report.problems
            shutil.rmtree(target)

        @invariant()
        def sizes_agree(self) -> None:
            assert sum(1 for _ in self.engine.scan()) == len(self.model)

        def teardown(self) -> None:
            try:
                self.settle()
                report = self.engine.verify()
                assert report.ok, report.problems
                assert list(self.engine.scan()) == sorted(self.model.items())
                self.engine.close()
                self.reopen_at(self.path)  # what was acknowledged is still there after a clean close
                assert list(self.engine.scan()) == sorted(self.model.items())
            finally:
                self.engine.close()
                shutil.rmtree(self.root, ignore_errors=True)

    return ContractMachine
