"""One cluster drill: build the fleet its scenario needs, load it, inject the fault, let the autopilot
respond, measure RTO and RPO (``drills.cluster`` holds the fleet, the load and the autopilot).

The fleet's shape per scenario (``SHAPES``): two nodes (a primary and a standby), or three (a
primary and two standbys) where a majority must survive a loss; in a partition lab (each node in its
own network namespace, ``drills.netlab``) where the fault is a network cut. Such a cut
heals after ``heal_after`` seconds, what the network team's fix is to the drill: recovery never
undoes the fault itself (the playbooks find a node that runs but is cut off by asking inside its
namespace, and wait for it). For ``network-partition`` a client on the cut-off side keeps writing to
the old primary while it is cut off (``side_load``); its acknowledged writes count in the RPO like
the main load's, so they must be reconciled (salvaged) into the new primary.

RTO: where the clients lose their primary (primary-loss, network-partition, two-node-loss,
total-cluster-loss): the kill (or cut) to the first write acknowledged by the new primary, through
detection, fencing, the choice of a standby and the salvage (the new primary holds client writes
until the salvage is applied); ``full_recovery_seconds`` runs until every node is back and caught
up. Otherwise: until one primary, every node answering and every standby caught up.
RPO: acknowledged writes (both loads) missing on the primary at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from drills import DrillResult, Ledger, Scenario, met_targets, rpo_of, set_rpo
from drills.cluster import ClusterLoad, ClusterNode, cluster_autopilot, lost_on, wait_cluster_healthy
from drills.netlab import PartitionLab
from drills.node import ROOT
from faults import inject
from playbooks.actions.node_cluster import survey

__all__ = ["Shape", "SHAPES", "cluster_drill"]

Log = Callable[[str], None] | None


@dataclass(frozen=True)
class Shape:
    nodes: int = 2
    lab: bool = False  # each node in its own network namespace: the fault cuts a cable
    target: str = "primary"  # the node the fault is injected on: "primary" | "standby"
    heal_after: float | None = None  # seconds after the fault the network is mended (a lab only)
    side_load: bool = False  # clients on the cut-off side keep writing to the target
    clients_lose_primary: bool = True  # RTO = the first write the (new) primary acknowledges


SHAPES: dict[str, Shape] = {
    "primary-loss": Shape(),
    "split-brain": Shape(target="standby", clients_lose_primary=False),
    "standby-lag": Shape(target="standby", clients_lose_primary=False),
    "isolated-node": Shape(nodes=3, lab=True, target="standby", heal_after=10.0, clients_lose_primary=False),
    "network-partition": Shape(nodes=3, lab=True, heal_after=14.0, side_load=True),
    "two-node-loss": Shape(nodes=3),
    "total-cluster-loss": Shape(nodes=3),
}


class SideLoad:
    """``drills.side_load`` inside the cut-off node's namespace: the clients on its side."""

    def __init__(self, prefix: list[str], url: str, ledger_path: Path) -> None:
        self.ledger_path = ledger_path
        self.process = subprocess.Popen(
            [*prefix, sys.executable, "-m", "drills.side_load", url, str(ledger_path), "p"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        stdout: IO[bytes] | None = self.process.stdout
        assert stdout is not None
        if stdout.readline().strip() != b"ready":
            self.process.kill()
            self.process.wait(10)
            raise RuntimeError("the side load did not start")
        self.outcome: dict[str, int] = {}

    def stop(self) -> dict[str, int]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                out, _ = self.process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                out, _ = self.process.communicate(timeout=10)
            lines = [line for line in out.decode(errors="replace").splitlines() if line.startswith("{")]
            self.outcome = json.loads(lines[-1]) if lines else {}
        return self.outcome


def _fleet(shape: Shape, engine: str, sandbox: Path, lab: PartitionLab | None) -> list[ClusterNode]:
    names = [f"node-{letter}" for letter in "abc"[: shape.nodes]]
    nodes: list[ClusterNode] = []
    for index, name in enumerate(names):
        follow = nodes[0].url if index else None
        nodes.append(ClusterNode(name, sandbox / name, engine, sandbox / f"{name}.log", follow=follow, lab=lab))
    for node in nodes:  # each polls the others: fencing, split-brain flags
        node.peers = [other.url for other in nodes if other is not node]
    return nodes


def cluster_drill(
    scenario: Scenario, engine: str, sandbox: Path, result: DrillResult, *, writes: int, seed: int, log: Log
) -> None:
    """Run one cluster scenario in ``sandbox``; fills ``result``. A lab that cannot be built raises
    ``NetnsUnavailable`` (the drill's error says why)."""
    shape = SHAPES[scenario.name]
    with contextlib.ExitStack() as stack:
        lab = (
            stack.enter_context(PartitionLab.create([f"node-{c}" for c in "abc"[: shape.nodes]])) if shape.lab else None
        )
        _run(scenario, shape, engine, sandbox, result, lab, writes=writes, seed=seed, log=log)


def _run(
    scenario: Scenario,
    shape: Shape,
    engine: str,
    sandbox: Path,
    result: DrillResult,
    lab: PartitionLab | None,
    *,
    writes: int,
    seed: int,
    log: Log,
) -> None:
    ledger_path = sandbox / "ledger" / "acked.jsonl"
    side_path = sandbox / "ledger" / "cut-off-side.jsonl"
    nodes = _fleet(shape, engine, sandbox, lab)
    roles = {node.name: "primary" if index == 0 else "standby" for index, node in enumerate(nodes)}
    ledger = Ledger(ledger_path)
    load: ClusterLoad | None = None
    side: SideLoad | None = None
    heal: threading.Timer | None = None
    try:
        for node in nodes:
            node.start()
        load = ClusterLoad([node.url for node in nodes], ledger).start()
        load.wait_for(writes)
        target = nodes[0] if shape.target == "primary" else nodes[1]
        before = survey([node.url for node in nodes], timeout=1.0)
        fault = inject(scenario.name, target.data_dir, seed=seed)
        fault_at, fault_wall = time.monotonic(), time.time()
        result.fault = fault.to_json()
        result.fault["acked_at_fault"] = load.acked
        result.fault["before"] = [member.describe() for member in before]
        killed = set(result.fault.get("pids") or ([result.fault["pid"]] if scenario.name == "primary-loss" else []))
        for node in nodes:  # reaped: no zombie keeps a killed node's lock file open
            if node.process is not None and node.process.pid in killed:
                node.process.wait(timeout=10)
        held = load.last_lsn.get(nodes[0].url)  # the last LSN the primary acknowledged to the load
        if shape.side_load and lab is not None:
            side = SideLoad(lab.prefix(target.name), target.url, side_path)
        if shape.heal_after is not None and lab is not None:
            heal = threading.Timer(shape.heal_after, lab.heal, [target.name])
            heal.start()
        if log:
            log(f"fault: {fault.summary} ({load.acked} writes acknowledged so far; the load goes on)")
        if scenario.name in ("standby-lag", "isolated-node"):
            load.wait_for(load.acked + 100, timeout=5)  # the primary takes writes the standby does not apply
        result.playbooks, result.triage, roles = cluster_autopilot(nodes, roles, log=log)
        ok, why, serving = wait_cluster_healthy(nodes, timeout=20)
        healed_at = time.monotonic()
        first = load.first_ack_after(fault_at, serving) if serving else None
        recovered_at = first if shape.clients_lose_primary and first is not None else healed_at
        result.rto_seconds = round(recovered_at - fault_at, 3) if ok else None
        result.fault["full_recovery_seconds"] = round(healed_at - fault_at, 3)
        if shape.clients_lose_primary and held is not None and serving is not None:
            history = survey([serving], timeout=2.0)[0].history
            promoted_at = max(history, key=lambda entry: entry.epoch).start_lsn if history else None
            # The async RPO bound: acknowledged records of the dead primary the standby had not applied.
            result.fault["lag_at_failure_records"] = None if promoted_at is None else max(0, held - promoted_at)
        if ok:
            load.wait_for(load.acked + 20, timeout=10)  # the clients get acknowledgements again
        load.stop()
        ledger.close()
        if side is not None:
            result.fault["cut_off_side"] = side.stop()
        result.recovered, result.health = ok, why
        expected = Ledger.expected(ledger_path)
        total = Ledger.count(ledger_path)
        if side_path.exists():
            expected.update(Ledger.expected(side_path))  # their keys ("p...") are the cut-off side's own
            total += Ledger.count(side_path)
        lost = lost_on(serving, expected) if serving else list(expected.values())
        set_rpo(result, rpo_of(lost, total, fault_wall))
        result.passed = met_targets(scenario, ok, result.rto_seconds, result.rpo_seconds, len(lost))
    finally:
        if heal is not None:
            heal.cancel()
        if side is not None:
            side.stop()
        if load is not None:
            load.stop()
        with contextlib.suppress(Exception):
            ledger.close()
        for node in nodes:
            node.stop()
