"""Cluster drills' fleet, load and autopilot (``drills.cluster_drill`` runs a drill with them).

The sandbox fleet: two or three nodes (``drconsole node serve``, the others ``--follow`` the first)
on free loopback ports, or each in its own network namespace of a partition lab
(``drills.netlab``), sync durability (acknowledged = fsynced on the primary), the standbys
pulling the primary's WAL, each node polling the others as peers (a lower epoch is fenced by the
nodes themselves; a split brain in one epoch is flagged and stays until the console resolves it).
Replication is asynchronous: the drill's RPO 0 comes from the failover's salvage of the old
primary's WAL, and ``lag_at_failure_records`` reports what it had to salvage. The load writes
through the node API to whichever node is the primary, rediscovering it after a refusal or a
timeout as a client library does, and ledgers each write once acknowledged (outside the data dirs).

The autopilot: a fleet snapshot over HTTP (the inventory names each node's data dir and group), the
decision tree, and each recommended playbook run with ``--yes`` and ``--param nodes=...`` on the data
dir of the node it is about: the down primary (failover, rebuild-primary), each primary of a split
brain (the playbook leaves the authoritative one alone), the node that does not answer
(isolated-node, total-cluster-loss), a cut-off node or a standby following another node than the
primary (network-partition). Between rounds the supervisor starts a node whose process is gone, on
its own port: its saved state says what it is.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from drills import run_waiving
from drills.netlab import PartitionLab
from drills.node import ROOT, BackgroundLoad, free_port, node_serves, serve_command, stop_child, wait_for_node
from engines.node.client import NodeClient
from fleet import HttpSource, NodeSpec
from playbooks.actions.node_cluster import Member, survey
from playbooks.actions.node_process import serving_process, stop_process
from playbooks.loader import Library
from playbooks.runner import Runner, RunOptions
from playbooks.triage import triage

__all__ = [
    "ClusterNode",
    "ClusterLoad",
    "cluster_autopilot",
    "cluster_healthy",
    "wait_cluster_healthy",
    "lost_on",
    "CLUSTER_TARGET_PLAYBOOKS",
]

Log = Callable[[str], None] | None

# Which node's data dir a recommended playbook is run on.
CLUSTER_TARGET_PLAYBOOKS = {
    "failover": "down-primary",
    "rebuild-primary": "stale-primary",
    "split-brain": "primaries",
    "isolated-node": "unreachable",
    "network-partition": "partitioned",
    "total-cluster-loss": "unreachable",
}


class ClusterNode:
    """One ``node serve`` process of the sandbox fleet, on a port it keeps across restarts.

    ``lab``: it runs in its own network namespace of that partition lab, on the lab's address.
    """

    def __init__(
        self,
        name: str,
        data_dir: Path,
        engine: str,
        log_path: Path,
        follow: str | None = None,
        lab: PartitionLab | None = None,
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.name, self.data_dir, self.engine, self.log_path, self.follow = name, data_dir, engine, log_path, follow
        self.extra, self.env = extra, env  # more ``node serve`` options; the environment (HOME: its ~/.ssh)
        self.peers: list[str] = []
        self.lab = lab
        self.port = free_port()
        self.host = lab.address(name) if lab is not None else "127.0.0.1"
        self.url = f"http://{self.host}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, follow: bool = True, timeout: float = 30.0) -> ClusterNode:
        command = [
            *(self.lab.prefix(self.name) if self.lab else []),
            *serve_command(
                self.engine,
                self.data_dir,
                self.port,
                *("--name", self.name, "--durability", "sync", "--log-level", "warning"),
            ),
        ]
        if self.lab is not None:
            # a lab address is not loopback: the lab's network is this host's own, behind no router
            command += ["--host", self.host, "--advertise-url", self.url, "--allow-remote"]
        if follow and self.follow:
            command += ["--follow", self.follow]
        for peer in self.peers:
            command += ["--peer", peer]
        command += self.extra
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, stdout=log, stderr=log, env={**(self.env or os.environ), "PYTHONPATH": str(ROOT)}
            )
        wait_for_node(
            self.process,
            self.url,
            timeout=timeout,
            up=lambda status: status in (200, 503),  # up, healthy or not: a fault may be what it serves
            what=f"node {self.name}",
            log_path=self.log_path,
        )
        return self

    @property
    def pid(self) -> int | None:
        serving = serving_process(self.data_dir)
        return serving.pid if serving is not None else None

    def running(self) -> bool:
        if self.process is not None and self.process.poll() is None:
            return True
        return serving_process(self.data_dir) is not None

    def stop(self) -> None:
        """Stop whatever serves the data dir: our child, or a process a playbook started again."""
        stop_child(self.process)
        serving = serving_process(self.data_dir) if self.data_dir.exists() else None
        if serving is not None:
            stop_process(serving.pid, grace_seconds=10)


class ClusterLoad(BackgroundLoad):
    """Writes through the node API to the primary; each write ledgered once acknowledged.

    After a refusal (409: a standby or a fenced node) or no answer, it looks for the primary again
    among ``urls``, as a client library with a list of hosts does.
    """

    def __init__(
        self, urls: list[str], ledger: Any, *, prefix: str = "c", value_size: int = 128, pause: float = 0.004
    ) -> None:
        self.urls, self.ledger, self.prefix, self.value_size, self.pause = urls, ledger, prefix, value_size, pause
        self.target = urls[0]
        self.acks: list[tuple[float, str]] = []  # (monotonic time, node) of each acknowledgement
        self.last_lsn: dict[str, int] = {}  # node -> the LSN of the last write it acknowledged
        super().__init__("cluster-load")

    def _primary(self) -> str | None:
        best: tuple[int, str] | None = None
        for url in self.urls:
            try:
                body = httpx.get(f"{url}/health", timeout=0.3).json()
            except (httpx.HTTPError, ValueError):
                continue
            if body.get("role") == "primary" and (best is None or int(body.get("epoch", 0)) > best[0]):
                best = (int(body.get("epoch", 0)), url)
        return best[1] if best else None

    def _run(self) -> None:
        clients = {url: NodeClient(url, timeout=1.0) for url in self.urls}
        try:
            while not self._stop.is_set():
                key = f"{self.prefix}{self.number:07d}".encode()
                value = os.urandom(self.value_size // 2).hex().encode()
                self.number += 1
                try:
                    lsn = clients[self.target].put(key, value)
                except Exception:  # noqa: BLE001 - not acknowledged: not in the ledger; find the primary
                    self.failed += 1
                    self.target = self._primary() or self.target
                    self._stop.wait(0.02)
                    continue
                self.ledger.ack(key, value, lsn)
                self.acked += 1
                self.last_lsn[self.target] = lsn
                self.acks.append((time.monotonic(), self.target))
                self._stop.wait(self.pause)
        finally:
            for client in clients.values():
                client.close()

    def first_ack_after(self, moment: float, node: str | None = None) -> float | None:
        for when, where in list(self.acks):
            if when > moment and (node is None or where == node):
                return when
        return None


# ------------------------------------------------------------------------------------------- the autopilot
def _snapshot(nodes: list[ClusterNode], roles: dict[str, str]) -> Any:
    # The inventory an operator keeps: each node's URL, data dir and replication group (a group
    # whose every node is down is still known to be one).
    specs = [
        NodeSpec(
            name=node.name,
            url=node.url,
            role=roles.get(node.name, "standby"),
            engine=node.engine,
            data_dir=node.data_dir,
            group="drill",
        )
        for node in nodes
    ]

    async def collect() -> Any:
        source = HttpSource(specs)
        try:
            return await source.collect()
        finally:
            await source.aclose()

    return asyncio.run(collect())


def _roles(nodes: list[ClusterNode], members: list[Member], roles: dict[str, str]) -> dict[str, str]:
    """What each node last said it is (a fenced node counts as a standby-to-be; silence keeps the old)."""
    by_url = {member.url: member for member in members}
    updated = dict(roles)
    for node in nodes:
        member = by_url.get(node.url)
        if member is not None and member.reachable:
            updated[node.name] = "primary" if member.role == "primary" else "standby"
    return updated


def _targets(
    playbook: str, nodes: list[ClusterNode], members: list[Member], roles: dict[str, str]
) -> list[ClusterNode]:
    by_url = {member.url: member for member in members}
    kind = CLUSTER_TARGET_PLAYBOOKS.get(playbook)
    if kind == "down-primary":
        return [n for n in nodes if roles.get(n.name) == "primary" and not by_url[n.url].reachable]
    if kind == "stale-primary":  # down, or up and fenced: an old primary to rebuild as a standby
        return [
            n
            for n in nodes
            if (roles.get(n.name) == "primary" and not by_url[n.url].reachable) or by_url[n.url].role == "fenced"
        ]
    if kind == "primaries":
        return [n for n in nodes if by_url[n.url].reachable and by_url[n.url].role == "primary"]
    if kind == "unreachable":
        return [n for n in nodes if not by_url[n.url].reachable]
    if kind == "partitioned":  # cut off, else a standby that follows another node than the primary
        down = [n for n in nodes if not by_url[n.url].reachable]
        primaries = {m.url for m in members if m.reachable and m.role == "primary"}
        return down or [
            n
            for n in nodes
            if by_url[n.url].role == "standby" and (by_url[n.url].upstream or "").rstrip("/") not in primaries
        ]
    return []


def cluster_autopilot(
    nodes: list[ClusterNode],
    roles: dict[str, str],
    *,
    rounds: int = 3,
    log: Log = None,
    after_run: Callable[[str], None] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
    """Triage the fleet, run each recommended playbook on its node's data dir; again until nothing is found."""
    urls = ",".join(node.url for node in nodes)
    library = Library.load()  # once: the failover clock is running
    runs: list[dict[str, Any]] = []
    walks: list[dict[str, Any]] = []
    for _ in range(rounds):
        members = survey([node.url for node in nodes], timeout=1.0)
        result = triage(snapshot=_snapshot(nodes, roles), library=library)
        walks.append(
            {
                "recommended": result.recommended,
                "summary": result.summary,
                "path": [[entry.node, entry.answer, entry.evidence] for entry in result.path],
            }
        )
        if log:
            log(f"triage: {result.summary} -> {', '.join(result.recommended) or 'nothing'}")
        if not set(result.recommended) & set(CLUSTER_TARGET_PLAYBOOKS):
            break  # the fleet questions found nothing; the rest of the tree is about one data dir's files
        for playbook in result.recommended:
            members = survey([node.url for node in nodes], timeout=1.0)
            for node in _targets(playbook, nodes, members, roles):
                try:
                    run = run_waiving(
                        Runner(library),
                        playbook,
                        node.data_dir,
                        RunOptions(params={"nodes": urls}, assume_yes=True, node=node.name),
                        runs,
                        node.name,
                    )
                    runs.append(
                        {
                            "playbook": playbook,
                            "node": node.name,
                            "status": run.status,
                            "message": run.message,
                            "lost": run.lost,
                            "steps": [(step.id, step.status, step.summary) for step in run.steps],
                        }
                    )
                except Exception as exc:  # noqa: BLE001 - a playbook that cannot run is a finding, recorded
                    runs.append(
                        {
                            "playbook": playbook,
                            "node": node.name,
                            "status": "error",
                            "message": f"{type(exc).__name__}: {exc}",
                        }
                    )
                if log:
                    log(f"  {playbook} on {node.name}: {runs[-1]['status']} {runs[-1]['message']}")
                if after_run is not None:
                    after_run(playbook)
        for node in nodes:  # the supervisor: a node whose process is gone is started again
            if not node.running():
                node.start(follow=False)
                if log:
                    log(f"  supervisor: started {node.name} again on {node.url}")
        roles = _roles(nodes, survey([node.url for node in nodes], timeout=1.0), roles)
    return runs, walks, roles


# ------------------------------------------------------------------------------------------- measuring
def cluster_healthy(nodes: list[ClusterNode]) -> tuple[bool, str, str | None]:
    """One primary that serves a write and a read, every node answering, each standby caught up."""
    members = survey([node.url for node in nodes], timeout=1.0)
    primaries = [m for m in members if m.reachable and m.role == "primary"]
    if len(primaries) != 1:
        return False, f"{len(primaries)} primaries: " + "; ".join(m.describe() for m in members), None
    down = [m for m in members if not m.reachable]
    if down:
        return False, "not answering: " + ", ".join(m.url for m in down), primaries[0].url
    behind = [m for m in members if m.role == "standby" and not (m.connected and m.lag_records == 0)]
    if behind:
        return False, "standby not caught up: " + "; ".join(m.describe() for m in behind), primaries[0].url
    stale = [m for m in members if m.role not in ("primary", "standby")]
    if stale:
        return False, "not rejoined: " + "; ".join(m.describe() for m in stale), primaries[0].url
    ok, why = node_serves(primaries[0].url)
    return ok, why, primaries[0].url


def wait_cluster_healthy(nodes: list[ClusterNode], timeout: float) -> tuple[bool, str, str | None]:
    deadline = time.monotonic() + timeout
    while True:
        ok, why, primary = cluster_healthy(nodes)
        if ok or time.monotonic() >= deadline:
            return ok, why, primary
        time.sleep(0.1)


def lost_on(primary: str, expected: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The ledger's newest acknowledged value of each key that the primary does not return."""
    lost = []
    with NodeClient(primary, timeout=10.0) as client:
        for key, entry in expected.items():
            value = client.get(key.encode())
            found = hashlib.sha256(value).hexdigest() if value is not None else None
            if found != entry["sha256"]:
                lost.append(entry)
    return lost
