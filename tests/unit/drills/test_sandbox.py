"""The drill sandbox shared by ``run_drill`` and the console's drill mode: its load, fault and RPO count.

Real engines on files: what the ledger says was acknowledged is read back through the engine.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from drills import SCENARIOS, Ledger, Sandbox, measure_rpo, met_targets
from engines import open_engine
from engines.backup import list_backups


@pytest.mark.parametrize("archive_wal", [True, False])
def test_load_ledgers_every_acknowledged_write_and_backs_up_part_way(tmp_path: Path, archive_wal: bool) -> None:
    sandbox = Sandbox.create(tmp_path, prefix="drill-test-")
    sandbox.load("lsm", before=30, after=20, archive_wal=archive_wal)

    assert sandbox.root.parent == tmp_path and sandbox.data_dir == sandbox.root / "data"
    assert Ledger.count(sandbox.ledger_path) == 50
    assert not sandbox.ledger_path.is_relative_to(sandbox.data_dir)  # the ledger survives what the fault does
    # the full backup after the first 30 writes, and with archiving the WAL shipped at the end as well
    kinds = [backup["type"] for backup in list_backups(sandbox.repo).backups]
    assert kinds == (["full", "incremental"] if archive_wal else ["full"])
    assert sandbox.until_ns > 0
    rpo = measure_rpo(sandbox.ledger_path, sandbox.data_dir, fault_wall=0.0)
    assert (rpo.acked_writes, rpo.lost_writes, rpo.rpo_seconds, rpo.unreadable) == (50, 0, 0.0, None)


def test_rpo_counts_the_writes_a_fault_lost_back_to_the_fault(tmp_path: Path) -> None:
    sandbox = Sandbox.create(tmp_path, prefix="drill-test-")
    sandbox.load("cow", before=12, after=8)
    fault = sandbox.break_with("accidental-deletion", seed=3)
    assert fault.kind == "accidental-deletion" and sandbox.fault is fault
    assert sandbox.fault_wall > 0 and sandbox.fault_at > 0

    with open_engine(sandbox.data_dir, mode="ro") as engine:
        missing = [key for key in Ledger.expected(sandbox.ledger_path) if engine.get(key.encode()) is None]
    rpo = measure_rpo(sandbox.ledger_path, sandbox.data_dir, sandbox.fault_wall)

    assert rpo.acked_writes == 20 and rpo.lost_writes == len(missing) > 0
    oldest = min(Ledger.expected(sandbox.ledger_path)[key]["ack"] for key in missing)
    assert rpo.rpo_seconds == round(sandbox.fault_wall - oldest, 3)
    scenario = SCENARIOS["accidental-deletion"]  # RPO target 0: one lost write fails the drill
    assert not met_targets(scenario, True, 1.0, rpo.rpo_seconds, rpo.lost_writes)
    assert met_targets(scenario, True, 1.0, 0.0, 0)


def test_a_data_dir_that_cannot_be_read_back_loses_everything_acknowledged(tmp_path: Path) -> None:
    sandbox = Sandbox.create(tmp_path, prefix="drill-test-")
    sandbox.load("lsm", before=6, after=4, archive_wal=False)
    shutil.rmtree(sandbox.data_dir)

    rpo = measure_rpo(sandbox.ledger_path, sandbox.data_dir, fault_wall=2e9)

    assert (rpo.acked_writes, rpo.lost_writes) == (10, 10)
    assert rpo.unreadable is not None and rpo.rpo_seconds > 0


def test_remove_takes_only_the_sandbox(tmp_path: Path) -> None:
    neighbour = tmp_path / "keep.txt"
    neighbour.write_text("not the drill's")
    sandbox = Sandbox.create(tmp_path, prefix="drill-test-")
    sandbox.load("lsm", before=3, after=2, archive_wal=False)
    sandbox.remove()
    assert not sandbox.root.exists() and neighbour.read_text() == "not the drill's"
