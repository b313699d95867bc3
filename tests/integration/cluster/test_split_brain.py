"""Split brain for real: ``fault inject split-brain`` makes two primaries in one epoch, both taking
writes; the split-brain playbook, run on each, keeps the authoritative one, fences and rebuilds the
other, and the writes the fenced side acknowledged after the split are on the survivor."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cluster_support import Fleet, audit_actions, cli, missing, write

from engines.node.client import NodeClient


def test_split_brain_is_resolved_and_both_sides_writes_survive(
    fleet: Fleet, capsys: pytest.CaptureFixture[str], state_dir: Path
) -> None:
    shared = write(fleet.a.url, "shared", 100)
    fleet.caught_up(fleet.b)
    for kind in ("split-brain", "standby-lag"):  # both need a standby's data dir: refused, nothing changed
        wrong = cli(capsys, "fault", "inject", kind, "--data-dir", fleet.a.data_dir, "--json")
        assert wrong.code == 2 and "not a standby's data dir" in wrong.json()["error"]
    assert {m.role for m in fleet.members().values()} == {"primary", "standby"}
    fault = cli(capsys, "fault", "inject", "split-brain", "--data-dir", fleet.b.data_dir, "--json")
    assert fault.code == 0, fault.err
    members = fleet.members()
    assert members[fleet.a.url].role == members[fleet.b.url].role == "primary"
    assert members[fleet.a.url].epoch == members[fleet.b.url].epoch == 1
    on_a = write(fleet.a.url, "side-a", 60)  # both sides acknowledge writes: the split brain
    on_b = write(fleet.b.url, "side-b", 20)
    deadline = time.monotonic() + 5  # the peers see it too, at their next poll (every second)
    with NodeClient(fleet.a.url) as client:
        while not client.health()["split_brain"]:
            assert time.monotonic() < deadline, "node-a never flagged the split brain"
            time.sleep(0.1)

    triage = cli(capsys, "triage", "--json", "--data-dir", fleet.a.data_dir)  # one data dir: no fleet view
    assert triage.code in (0, 1)
    results = {}
    for node in fleet.nodes:  # the authoritative side's own run changes nothing there
        run = cli(
            capsys,
            "playbook",
            "run",
            "split-brain",
            "--data-dir",
            node.data_dir,
            "--param",
            f"nodes={fleet.urls}",
            "--yes",
            "--json",
        )
        assert run.code == 0, run.out + run.err
        results[node.name] = {step["id"]: step for step in run.json()["steps"]}
    # node-a took more writes (a higher LSN in the same epoch): it is authoritative and untouched
    assert results["node-a"]["fence"]["status"] == "skipped"
    assert results["node-b"]["fence"]["status"] == "succeeded"
    assert "20 key(s) re-applied" in results["node-b"]["salvage"]["summary"]
    assert results["node-b"]["rejoin"]["status"] == "succeeded"
    members = fleet.caught_up(fleet.b)
    assert members[fleet.a.url].role == "primary" and members[fleet.b.url].role == "standby"
    assert missing(fleet.a.url, {**shared, **on_a, **on_b}) == []  # RPO 0 on both sides
    assert missing(fleet.b.url, {**shared, **on_a, **on_b}) == []  # the rebuilt standby has it all
    diverged = list((fleet.root / ".quarantine").glob("rejoin-*-node-b"))
    assert len(diverged) == 1  # node-b's divergent data dir, kept whole
    assert list(diverged[0].rglob("diverged-*.jsonl"))  # and the records it gave back, for reconciliation
    assert ("node.fence", "succeeded") in audit_actions(state_dir)
    assert ("node.rejoin", "succeeded") in audit_actions(state_dir)
