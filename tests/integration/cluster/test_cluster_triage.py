"""The decision tree's cluster branch on fleet snapshots: which playbook each cluster fault leads to.

The snapshots are what ``HttpSource`` reads from two nodes (a primary and its standby); the
drills reach the same answers from live nodes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fleet import FleetSnapshot, Health, NodeSnapshot
from playbooks.triage import triage


def fleet(*nodes: NodeSnapshot) -> FleetSnapshot:
    return FleetSnapshot(taken_at=datetime.now(UTC), nodes=nodes, source="fixture")


def up(name: str, role: str, epoch: int = 1) -> NodeSnapshot:
    """A node of the pair a, b (replication group "ab", as the sources set it) that answers; each polls the other."""
    return NodeSnapshot(
        name=name,
        role=role,
        epoch=epoch,
        health=Health.OK,
        reachable=True,
        group="ab",
        peers=("b" if name == "a" else "a",),
    )


def down(name: str, role: str) -> NodeSnapshot:
    return NodeSnapshot(name=name, role=role, health=Health.DOWN, reachable=False, group="ab")


@pytest.mark.parametrize(
    ("snapshot", "recommended", "evidence"),
    [
        (fleet(down("a", "primary"), up("b", "standby")), ["failover", "rebuild-primary"], "primary a unreachable"),
        (fleet(up("a", "primary"), up("b", "primary")), ["split-brain"], "epoch 1"),
        (fleet(up("a", "primary", 2), up("b", "fenced", 2)), ["rebuild-primary"], "b fenced"),
        # one of a pair lost is not "a minority survives": the standby is cut off (standby-lag, isolated-node)
        (fleet(up("a", "primary"), down("b", "standby")), ["isolated-node"], "b's data dir is not on this host"),
        (fleet(down("a", "primary"), down("b", "standby")), ["total-cluster-loss", "restore"], "0 of 2"),
    ],
    ids=["primary-down", "split-brain", "fenced", "standby-cut-off", "all-down"],
)
def test_each_cluster_fault_leads_to_its_playbook(
    snapshot: FleetSnapshot, recommended: list[str], evidence: str
) -> None:
    result = triage(snapshot=snapshot)
    assert result.recommended == recommended, [(entry.node, entry.answer, entry.evidence) for entry in result.path]
    assert result.pending == {}
    assert any(evidence in entry.evidence for entry in result.path[-2:]), [entry.evidence for entry in result.path]


def test_a_healthy_pair_leads_to_no_cluster_playbook() -> None:
    result = triage(snapshot=fleet(up("a", "primary"), up("b", "standby")))
    answers = {entry.node: entry.answer for entry in result.path}
    assert answers["split-brain"] is False and answers["primary-down"] is False and answers["fenced"] is False
    assert answers["minority"] is False and answers["partition"] is False and answers["isolated"] is False
    assert not {
        "failover",
        "split-brain",
        "rebuild-primary",
        "isolated-node",
        "network-partition",
        "total-cluster-loss",
    } & set(result.recommended)


def test_the_playbook_runs_on_the_node_the_question_found() -> None:
    """Triaging the standby when the primary is lost: failover is run on the primary (run_on), P1."""
    result = triage(snapshot=fleet(down("a", "primary"), up("b", "standby")), node="b")
    assert result.recommended[0] == "failover" and result.run_on == "a"
    assert (result.fault, result.severity) == ("primary-down", "P1")


def test_a_problem_in_another_group_is_not_this_nodes() -> None:
    """Two groups: a split brain in group "ab" does not touch the triage of c, alone in its group."""
    other = NodeSnapshot(name="c", role="primary", epoch=1, health=Health.OK, reachable=True, group="c")
    snapshot = fleet(up("a", "primary"), up("b", "primary"), other)
    assert triage(snapshot=snapshot, node="a").fault == "split-brain"
    alone = triage(snapshot=snapshot, node="c")
    assert [entry.node for entry in alone.path][:3] == ["fleet", "in-group", "data-here"]
    assert alone.fault != "split-brain"
