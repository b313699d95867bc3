"""Failover and rebuild-primary for real: a killed primary, the standby promoted, the old one rebuilt.

Real processes on loopback: the primary is SIGKILLed by ``drconsole fault inject primary-loss`` after
writes were acknowledged, the failover playbook runs from the CLI with --yes, and every acknowledged
write is on the new primary afterwards (the ones the standby never applied come from the old
primary's WAL). The old primary's data dir moves to quarantine whole when it is rebuilt.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
from cluster_support import Fleet, audit_actions, cli, missing, role_in_state, write

from engines.errors import SafetyRefusal
from engines.node.client import NodeClient
from playbooks.actions import REGISTRY, ActionContext
from playbooks.audit import AuditLog
from playbooks.state import StateDir

pytestmark = pytest.mark.slow  # about 14 s; the fast suite fails over in the primary-loss drill instead


def test_failover_promotes_the_standby_and_loses_no_acknowledged_write(
    fleet: Fleet, capsys: pytest.CaptureFixture[str], state_dir: Path
) -> None:
    acked = write(fleet.a.url, "before", 200)
    fleet.caught_up(fleet.b)
    context = ActionContext(data_dir=fleet.b.data_dir, audit=AuditLog(StateDir(state_dir).audit_log))
    with pytest.raises(SafetyRefusal) as refused_promotion:  # the primary answers, unfenced: two primaries
        REGISTRY.invoke("node.promote", context, {"nodes": fleet.urls})
    assert refused_promotion.value.exit_code == 4 and "still answers as primary" in refused_promotion.value.message
    assert ("node.promote", "refused") in audit_actions(state_dir)
    assert fleet.members()[fleet.b.url].role == "standby"
    lag = cli(capsys, "fault", "inject", "standby-lag", "--data-dir", fleet.b.data_dir, "--json")
    assert lag.code == 0, lag.err
    assert lag.json()["undo"] == f"kill -CONT {fleet.b.pid}"
    unreplicated = write(fleet.a.url, "unreplicated", 50)  # acknowledged by the primary alone
    fault = cli(capsys, "fault", "inject", "primary-loss", "--data-dir", fleet.a.data_dir, "--json")
    assert fault.code == 0, fault.err
    assert "SIGKILL" in fault.json()["summary"]
    assert fleet.a.process is not None and fleet.a.process.wait(timeout=10) == -9
    os.kill(int(lag.json()["pid"]), signal.SIGCONT)  # the standby wakes up to a dead primary

    refused = cli(
        capsys,
        "playbook",
        "run",
        "failover",
        "--data-dir",
        fleet.a.data_dir,
        "--param",
        f"nodes={fleet.urls}",
        "--json",
    )
    assert refused.code == 4 and refused.json()["status"] == "refused"  # destructive: --yes needed
    assert fleet.members()[fleet.b.url].role == "standby"  # and nothing changed

    run = cli(
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
    assert run.code == 0, run.out + run.err
    steps = {step["id"]: step for step in run.json()["steps"]}
    # SIGSTOP lands within microseconds, not at once: the standby may still apply the first write or two.
    ahead = int(re.search(r"(\d+) record\(s\) the standby never applied", steps["compare-lsn"]["summary"]).group(1))
    assert 45 <= ahead <= 50
    assert f"{ahead} key(s) re-applied" in steps["salvage"]["summary"]
    member = fleet.members()[fleet.b.url]
    assert member.role == "primary" and member.epoch == 1
    assert missing(fleet.b.url, {**acked, **unreplicated}) == []  # RPO 0: the old primary's tail salvaged
    assert role_in_state(fleet.a.data_dir) == "fenced"  # a restart cannot bring it back as a primary
    assert ("node.promote", "succeeded") in audit_actions(state_dir)
    assert list((fleet.a.data_dir / ".quarantine").glob("run-*/safety-copy"))
    after = write(fleet.b.url, "after", 50)

    rebuild = cli(
        capsys,
        "playbook",
        "run",
        "rebuild-primary",
        "--data-dir",
        fleet.a.data_dir,
        "--param",
        f"nodes={fleet.urls}",
        "--yes",
        "--json",
    )
    assert rebuild.code == 0, rebuild.out + rebuild.err
    rejoin = next(step for step in rebuild.json()["steps"] if step["id"] == "rejoin")
    assert "past the split" in rejoin["summary"] and "reseeded" in rejoin["summary"]
    quarantined = list((fleet.root / ".quarantine").glob("rejoin-*-node-a"))
    assert len(quarantined) == 1 and (quarantined[0] / "wal").is_dir()  # the diverged dir, kept whole
    assert role_in_state(fleet.a.data_dir) == "standby"
    fleet.a.start(follow=False)  # the supervisor starts it; its saved state makes it a standby of node-b
    fleet.caught_up(fleet.a)
    with NodeClient(fleet.a.url) as old_primary:
        assert all(old_primary.get(key) == value for key, value in {**acked, **unreplicated, **after}.items())
