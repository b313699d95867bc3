"""Issue 9's sized targets: corruption on 100 MB of data recovers in <= 30 s, a restore of 512 MB in
<= 30 s, with no acknowledged write lost. Slow (15 drills, 10-80 s each): ``make test-all`` only."""

from __future__ import annotations

from pathlib import Path

import pytest

from drills import SCENARIOS, run_drill, scenario_pairs

CORRUPTION = (
    "page-corrupt",
    "meta-corrupt",
    "sstable-corrupt",
    "sst-corrupt",
    "wal-corrupt-tail",
    "wal-corrupt-middle",
    "manifest-lost",
)
SIZED = [(scenario, engine, 100.0) for scenario, engine in scenario_pairs() if scenario in CORRUPTION]
SIZED += [("ransomware", engine, 512.0) for engine in SCENARIOS["ransomware"].engines]  # a full restore


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize(("scenario", "engine", "megabytes"), SIZED)
def test_sized_drill_meets_issue_9_targets(tmp_path: Path, scenario: str, engine: str, megabytes: float) -> None:
    result = run_drill(scenario, engine, data_mb=megabytes, workdir=tmp_path)
    if not result.passed and result.recovered and result.lost_writes == 0:
        # an RTO-only miss on a box shared with parallel workers: measured once more before it counts
        result = run_drill(scenario, engine, data_mb=megabytes, workdir=tmp_path)
    assert result.error is None, result.error
    assert result.acked_writes == int(megabytes * 2**20 // 4096)
    assert result.lost_writes == 0, result.playbooks
    assert result.rto_seconds is not None and result.rto_seconds <= 30, (result.rto_seconds, result.playbooks)
