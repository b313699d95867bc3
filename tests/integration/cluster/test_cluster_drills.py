"""The cluster drills end to end: a primary + standby fleet, a load with its ledger, the fault, the
autopilot (fleet triage -> playbooks with --yes), measured RTO and RPO against the targets.

A drill takes 10-40 s here (two node processes, restarts, the read-back of every acknowledged write):
primary-loss on rocksdb (about 11 s) runs in the fast suite, every scenario on every engine in the slow one.
"""

from __future__ import annotations

import pytest
from cluster_support import cli

from playbooks.drills import SCENARIOS, run_drill

CLUSTER = [name for name, scenario in SCENARIOS.items() if scenario.cluster]
ENGINES = ("lsm", "rocksdb", "cow")
FAST = ("primary-loss", "rocksdb")
MATRIX = [pytest.param(name, engine, marks=() if (name, engine) == FAST else pytest.mark.slow)
          for name in CLUSTER for engine in ENGINES]


def test_the_four_cluster_scenarios_are_registered() -> None:
    assert set(CLUSTER) == {"primary-loss", "split-brain", "standby-lag", "isolated-node"}
    assert SCENARIOS["primary-loss"].target_rto_seconds == 5 and SCENARIOS["primary-loss"].target_rpo_seconds == 0


@pytest.mark.parametrize("name,engine", MATRIX)
def test_cluster_drill_meets_its_targets(name: str, engine: str) -> None:
    result = run_drill(name, engine, writes_before_backup=60, writes_after_backup=40)
    summary = (f"{name}/{engine}: RTO {result.rto_seconds} s, lost {result.lost_writes}/{result.acked_writes}, "
               f"error {result.error}, health {result.health}, playbooks {result.playbooks}")
    print(summary)  # the measured figures, in the test log
    assert result.error is None, summary
    assert result.recovered and result.rto_seconds is not None, summary
    assert result.rto_seconds <= SCENARIOS[name].target_rto_seconds, summary
    assert result.acked_writes > 100 and result.lost_writes == 0, summary
    assert result.passed, summary
    assert all(run["status"] == "succeeded" for run in result.playbooks), summary
    expected = {"primary-loss": "failover", "split-brain": "split-brain", "standby-lag": "isolated-node",
                "isolated-node": "isolated-node"}[name]
    if name == "split-brain" and not result.fault.get("same_epoch", True):
        expected = "rebuild-primary"  # the peers fenced the older primary at once (the fault report says so)
    assert expected in [run["playbook"] for run in result.playbooks], summary


@pytest.mark.slow
def test_drill_run_json_follows_the_cli_contract(capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "drill", "run", "primary-loss", "--engine", "lsm", "--writes", "200", "--json")
    payload = run.json()
    assert list(payload)[:9] == ["scenario", "engine", "rto_seconds", "rpo_seconds", "acked_writes", "lost_writes",
                                 "target_rto_seconds", "target_rpo_seconds", "passed"]
    assert payload["scenario"] == "primary-loss" and payload["engine"] == "lsm"
    assert run.code == (0 if payload["passed"] else 1)
    assert payload["passed"] and payload["lost_writes"] == 0 and payload["rto_seconds"] <= 5
    assert payload["fault"]["lag_at_failure_records"] is not None
