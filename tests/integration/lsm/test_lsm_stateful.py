"""The LSM engine behaves like a dict through flushes, compactions, reopens and crashes.

The contract machine (tests/integration/engines/contract_machine.py) with small keys and
memtable-sized values, on tiny memtables and levels: every few writes are a flush and every few
flushes a compaction, in the background threads. Only what the LSM alone has is added here:
per-level compactions, cache shrinking, read-only views of crash copies taken while background
work runs, and the manifest naming only tables that exist.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule
from integration.engines.contract_machine import Inputs, contract_machine
from lsm_kit import create_lsm
from support import SLOW, crash_copy

from engines import open_engine
from engines.lsm.engine import LsmEngine
from engines.lsm.manifest import MANIFEST_NAME, load_manifest

LSM_INPUTS = Inputs(
    keys=st.binary(min_size=1, max_size=6).map(lambda raw: b"k" + raw) | st.sampled_from([b"k\x00", b"k\xff", b"ka"]),
    values=st.binary(max_size=40) | st.binary(min_size=600, max_size=3000),
    batch_size=25,
    bulk_count=st.integers(1, 400),
    bulk_repeat=st.integers(4, 101),
    model_limit=500,
)


class LsmMachine(contract_machine(LSM_INPUTS)):  # type: ignore[misc]
    backend_label = "lsm"
    engine: LsmEngine

    def create(self, path: Path) -> LsmEngine:
        return create_lsm(path, durability="sync", wal_segment_bytes=64 * 1024)

    def reopen_at(self, path: Path) -> None:
        super().reopen_at(path)
        assert isinstance(self.engine, LsmEngine)

    def settle(self) -> None:
        self.engine.wait_for_background()
        assert self.engine.stats().total_keys == len(self.model)  # exact once no flush or merge is pending

    @rule(level=st.integers(0, 2))
    def compact_level(self, level: int) -> None:
        self.engine.compact_level(level)

    @rule(size=st.sampled_from([0, 4096, 1 << 20]))
    def reduce_cache(self, size: int) -> None:
        self.engine.reduce_cache(size)

    @rule()
    def read_only_view(self) -> None:
        self.engine._wal.flush()  # type: ignore[union-attr]
        target = self.fresh_dir("ro")
        crash_copy(self.path, target)
        with open_engine(target, mode="ro") as reader:
            assert list(reader.scan()) == sorted(self.model.items())

    @invariant()
    def manifest_names_only_existing_tables(self) -> None:
        # Background flushes and compactions go on while this looks: a table live in the manifest read
        # here may be retired and deleted two edits later, before its file is looked at. A missing table
        # counts only when the manifest did not change while it was checked.
        for _ in range(100):
            before = (self.path / MANIFEST_NAME).read_bytes()
            missing = [
                meta.name for meta in load_manifest(self.path).tables() if not (self.path / meta.relative_path).exists()
            ]
            if not missing or (self.path / MANIFEST_NAME).read_bytes() == before:
                assert not missing, missing
                return
        raise AssertionError("the manifest changed under every one of 100 looks")


LsmMachine.TestCase.settings = settings(
    max_examples=80 if SLOW else 15,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestLsmStateful = LsmMachine.TestCase
