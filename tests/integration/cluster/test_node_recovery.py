"""The other cluster playbooks for real, on a two-node fleet: network-partition on a fleet that is
whole (it waits and restarts nothing), and a total cluster loss brought back seed first. Slow: each
starts a fleet and restarts node processes.

isolated-node and network-partition against a real cut (nodes in network namespaces, a cut-off node
that keeps running) are the cluster drills' (tests/integration/cluster/test_cluster_drills.py): the
isolated-node fault refuses a node on the host's own network, so a fleet on loopback cannot be cut."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from cluster_support import Fleet, cli, missing, role_in_state, write

from drills.node import free_port
from engines import create_engine
from engines.backup import create_backup
from engines.node.client import NodeClient
from playbooks.actions import REGISTRY, ActionContext
from playbooks.audit import AuditLog
from playbooks.state import StateDir

pytestmark = pytest.mark.slow


def test_a_network_partition_run_on_a_healthy_fleet_waits_and_restarts_nothing(
    fleet: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    healthy = cli(
        capsys,
        "playbook",
        "run",
        "network-partition",
        "--data-dir",
        fleet.b.data_dir,
        "--param",
        f"nodes={fleet.urls}",
        "--json",
    )
    assert healthy.code == 0, healthy.out + healthy.err
    steps = {step["id"]: step for step in healthy.json()["steps"]}
    assert steps["wait"]["status"] == "succeeded" and steps["restart"]["status"] == "skipped"


def test_total_cluster_loss_restarts_the_seed_then_its_standby(
    fleet: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    acked = write(fleet.a.url, "before", 100)
    fleet.caught_up(fleet.b)
    for node in (fleet.b, fleet.a):
        assert cli(capsys, "fault", "inject", "process-kill", "--data-dir", node.data_dir).code == 0
        assert node.process is not None and node.process.wait(timeout=10) == -signal.SIGKILL
    seed_port, other_port = free_port(), free_port()
    seed = cli(
        capsys,
        "playbook",
        "run",
        "total-cluster-loss",
        "--data-dir",
        fleet.a.data_dir,
        "--param",
        f"nodes={fleet.urls}",
        "--param",
        f"port={seed_port}",
        "--json",
    )
    assert seed.code == 0, seed.out + seed.err
    seed_url = f"http://127.0.0.1:{seed_port}"
    other = cli(
        capsys,
        "playbook",
        "run",
        "total-cluster-loss",
        "--data-dir",
        fleet.b.data_dir,
        "--param",
        f"port={other_port}",
        "--param",
        f"follow={seed_url}",
        "--json",
    )
    assert other.code == 0, other.out + other.err
    try:
        with NodeClient(f"http://127.0.0.1:{other_port}") as standby:
            assert standby.health()["role"] == "standby"
        assert missing(seed_url, acked) == []
        assert role_in_state(fleet.a.data_dir) == "primary" and role_in_state(fleet.b.data_dir) == "standby"
    finally:
        fleet.stop()  # the playbooks started both again: stopped by whoever holds each data dir


def test_rebuild_from_a_backup_when_the_primary_cannot_hand_over_a_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = Fleet(tmp_path / "fleet", "lsm")
    with create_engine(fleet.a.data_dir, backend="lsm") as engine:  # node-a's data, backed up before it serves
        engine.write_batch([(b"seed%04d" % number, b"seeded") for number in range(100)])
        create_backup(tmp_path / "repo", engine=engine)
    try:
        fleet.start()
        fleet.caught_up(fleet.b)
        cli(capsys, "fault", "inject", "standby-lag", "--data-dir", fleet.b.data_dir)
        unreplicated = write(fleet.a.url, "unreplicated", 20)
        assert fleet.a.process is not None
        cli(capsys, "fault", "inject", "primary-loss", "--data-dir", fleet.a.data_dir)
        fleet.a.process.wait(timeout=10)
        assert fleet.b.pid is not None
        os.kill(fleet.b.pid, signal.SIGCONT)
        failover = cli(
            capsys,
            "playbook",
            "run",
            "failover",
            "--data-dir",
            fleet.a.data_dir,
            "--param",
            f"nodes={fleet.urls}",
            "--yes",
            "--json",
        )
        assert failover.code == 0, failover.out
        rebuild = cli(
            capsys,
            "playbook",
            "run",
            "rebuild-primary",
            "--data-dir",
            fleet.a.data_dir,
            "--param",
            f"nodes={fleet.urls}",
            "--param",
            f"repo={tmp_path / 'repo'}",
            "--yes",
            "--json",
        )
        assert rebuild.code == 0, rebuild.out
        rejoin = next(step for step in rebuild.json()["steps"] if step["id"] == "rejoin")
        assert f"reseeded from the backup in {tmp_path / 'repo'}" in rejoin["summary"]
        fleet.a.start(follow=False)  # seeded at the backup's LSN, it follows node-b from there
        fleet.caught_up(fleet.a)
        assert missing(fleet.a.url, {**unreplicated, b"seed0099": b"seeded"}) == []
    finally:
        fleet.stop()


def test_a_running_fenced_old_primary_rejoins_through_its_own_rejoin_endpoint(
    fleet: Fleet, capsys: pytest.CaptureFixture[str], state_dir: Path
) -> None:
    write(fleet.a.url, "before", 50)
    fleet.caught_up(fleet.b)
    cli(capsys, "fault", "inject", "standby-lag", "--data-dir", fleet.b.data_dir)
    unreplicated = write(fleet.a.url, "unreplicated", 10)
    cli(capsys, "fault", "inject", "primary-loss", "--data-dir", fleet.a.data_dir)
    assert fleet.a.process is not None and fleet.b.pid is not None
    fleet.a.process.wait(timeout=10)
    os.kill(fleet.b.pid, signal.SIGCONT)
    failover = cli(
        capsys,
        "playbook",
        "run",
        "failover",
        "--data-dir",
        fleet.a.data_dir,
        "--param",
        f"nodes={fleet.urls}",
        "--yes",
        "--json",
    )
    assert failover.code == 0, failover.out
    fleet.a.start(follow=False)  # the old primary comes back fenced (its saved state says so)
    assert fleet.members()[fleet.a.url].role == "fenced"
    context = ActionContext(data_dir=fleet.a.data_dir, audit=AuditLog(StateDir(state_dir).audit_log))
    result = REGISTRY.invoke("node.rejoin", context, {"nodes": fleet.urls})
    assert result.ok and result.data["how"] == "rejoin" and result.data["answer"]["diverged"] is True
    fleet.caught_up(fleet.a)
    assert missing(fleet.a.url, unreplicated) == []  # salvaged to node-b by the failover, replicated back
