"""Every backend behaves like a dict: the contract state machine (contract_machine.py) on each one.

The machine has writes, reads, flush, compact, reopen, crash-reopen and checkpoint; the real
SIGKILL test is test_crash_sigkill.py. Each backend's own suite runs the same machine with inputs
aimed at its internals, plus its own rules (lsm: test_lsm_stateful.py, cow: tests/unit/cow/test_stateful.py).
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, settings
from integration.engines.contract_machine import Inputs, contract_machine
from support import ALL_BACKENDS, SLOW

from engines import create_engine
from engines.base import Engine

_SETTINGS = settings(
    max_examples=60 if SLOW else 12,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


def make_machine(backend: str) -> type:
    class EngineMachine(contract_machine(Inputs())):  # type: ignore[misc]
        backend_label = backend

        def create(self, path: Path) -> Engine:
            return create_engine(path, backend=backend, durability="sync", wal_segment_bytes=64 * 1024)

    EngineMachine.__name__ = f"EngineMachine_{backend}"
    return EngineMachine


def _test_case(backend: str) -> type:
    case = make_machine(backend).TestCase
    case.settings = _SETTINGS
    return case


# Built in a function: pytest collects every TestCase class a module holds, whatever its name, so a
# loop variable left holding the last one would run that backend twice.
for _backend in ALL_BACKENDS:
    globals()[f"TestStateful_{_backend}"] = _test_case(_backend)
