"""The cluster drills end to end: a primary + standby fleet, a load with its ledger, the fault, the
autopilot (fleet triage -> playbooks with --yes), measured RTO and RPO against the targets.

A drill takes 10-40 s here (two or three node processes, restarts, the read-back of every acknowledged
write). The fast suite runs each cluster playbook once end to end against live nodes: primary-loss
(failover, rebuild-primary), network-partition (a real cut in network namespaces: failover of a primary
that keeps taking writes on its side, then their salvage), isolated-node (isolated-node), two-node-loss
(failover, then network-partition repointing a standby) and total-cluster-loss (total-cluster-loss);
split-brain runs in test_split_brain.py. Every scenario on every engine runs in the slow suite.
Where the kernel refuses network namespaces (not root, no iproute2), the partition drills skip saying why.
"""

from __future__ import annotations

import pytest
from cluster_support import cli

from drills import SCENARIOS, run_drill

CLUSTER = [name for name, scenario in SCENARIOS.items() if scenario.cluster]
ENGINES = ("lsm", "rocksdb", "cow")
FAST = {
    ("primary-loss", "rocksdb"),
    ("network-partition", "lsm"),
    ("isolated-node", "cow"),
    ("two-node-loss", "rocksdb"),
    ("total-cluster-loss", "lsm"),
}
MATRIX = [
    pytest.param(name, engine, marks=() if (name, engine) in FAST else pytest.mark.slow)
    for name in CLUSTER
    for engine in ENGINES
]
# What each scenario's recovery must have run (succeeded): the playbooks end to end on live nodes.
PLAYBOOKS = {
    "primary-loss": {"failover", "rebuild-primary"},
    "split-brain": {"split-brain"},
    "standby-lag": {"isolated-node"},
    "isolated-node": {"isolated-node"},
    "network-partition": {"failover", "rebuild-primary"},
    "two-node-loss": {"failover", "rebuild-primary", "network-partition"},
    "total-cluster-loss": {"total-cluster-loss"},
}


def test_the_cluster_scenarios_are_registered() -> None:
    assert set(CLUSTER) == set(PLAYBOOKS)
    assert SCENARIOS["primary-loss"].target_rto_seconds == 5 and SCENARIOS["primary-loss"].target_rpo_seconds == 0
    assert all(SCENARIOS[name].target_rpo_seconds == 0 for name in CLUSTER)


@pytest.mark.parametrize("name,engine", MATRIX)
def test_cluster_drill_meets_its_targets(name: str, engine: str) -> None:
    result = run_drill(name, engine, writes_before_backup=60, writes_after_backup=40)
    if result.error and result.error.startswith("NetnsUnavailable"):
        pytest.skip(f"a real partition needs network namespaces: {result.error}")
    summary = (
        f"{name}/{engine}: RTO {result.rto_seconds} s, lost {result.lost_writes}/{result.acked_writes}, "
        f"error {result.error}, health {result.health}, fault {result.fault.get('summary')}, "
        f"playbooks {result.playbooks}"
    )
    print(summary)  # the measured figures, in the test log
    scenario = SCENARIOS[name]
    assert result.error is None, summary
    assert result.recovered and result.rto_seconds is not None, summary
    assert result.rto_seconds <= scenario.target_rto_seconds, summary  # the RTO target, measured
    assert result.rpo_seconds <= scenario.target_rpo_seconds, summary  # the RPO target: 0 s
    assert result.acked_writes > 100 and result.lost_writes == 0, summary
    assert result.passed, summary
    succeeded = {run["playbook"] for run in result.playbooks if run["status"] == "succeeded"}
    expected = set(PLAYBOOKS[name])
    if name == "split-brain" and not result.fault.get("same_epoch", True):
        expected = {"rebuild-primary"}  # the peers fenced the older primary at once (the fault report says so)
    assert expected <= succeeded, summary
    if name in ("network-partition", "isolated-node"):  # a real cut: the node ran on, in its own namespace
        assert result.fault["method"] == "link down" and result.fault["netns"], summary
        assert all(run["status"] != "error" for run in result.playbooks), summary
    if name == "network-partition":
        side = result.fault["cut_off_side"]
        # the clients on the cut-off side had writes acknowledged by the old primary, all found on the new one
        assert side["acked"] > 0, summary
        assert result.fault["lag_at_failure_records"] is not None, summary


@pytest.mark.slow
def test_drill_run_json_follows_the_cli_contract(capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "drill", "run", "primary-loss", "--engine", "lsm", "--writes", "200", "--json")
    payload = run.json()
    assert list(payload)[:9] == [
        "scenario",
        "engine",
        "rto_seconds",
        "rpo_seconds",
        "acked_writes",
        "lost_writes",
        "target_rto_seconds",
        "target_rpo_seconds",
        "passed",
    ]
    assert payload["scenario"] == "primary-loss" and payload["engine"] == "lsm"
    assert run.code == (0 if payload["passed"] else 1)
    assert payload["passed"] and payload["lost_writes"] == 0 and payload["rto_seconds"] <= 5
    assert payload["fault"]["lag_at_failure_records"] is not None
