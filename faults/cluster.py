"""Cluster faults: a lagging standby, a lost primary, a split brain, an isolated node.

``--data-dir D`` names the node: the process holding D's lock serves it, and its command line
says where it listens and whom it follows (``playbooks.actions.node_process``).

* ``standby-lag``: SIGSTOP of a standby's process: its follower stops applying while the primary
  goes on taking writes. Undo: ``kill -CONT PID`` (the report says so).
* ``primary-loss``: SIGKILL of a primary's process. Its data dir survives: what it acknowledged
  and the standby never applied is still in its WAL.
* ``split-brain``: through the node API: the standby at D is promoted while its primary keeps
  running unfenced; then, with the new primary held by SIGSTOP so that neither sees the other
  (a partition), the old primary is fenced and promoted again: both are primary in the same epoch
  and both take writes (what two failover managers on two sides of a partition do). Peers that
  poll each other flag it (``split_brain``) but fence only a lower epoch, so it stays.
* ``isolated-node`` / ``network-partition``: the node's network cable is pulled: every interface
  of its network namespace but loopback set down (``playbooks.netns.set_cables``). It keeps
  running, and a client on its side (inside its namespace) still gets writes acknowledged; no peer
  and no client elsewhere reaches it. A node on this host's own network (not in a namespace of its
  own) is refused: cutting it would cut the host. ``isolated-node`` is meant for a standby,
  ``network-partition`` for a primary (the cut-off side keeps taking writes). Undo: the report's
  ``ip -n NS link set IF up``.
* ``two-node-loss``: SIGKILL of the node and of the first peer its command line names (``--peer``,
  else ``--follow``) served on this host: two of three nodes lost.
* ``total-cluster-loss``: SIGKILL of the node and of every node its command line names.
* ``host-loss``: the node's whole host is gone: its process SIGKILLed, its network namespace's
  cables pulled, and its disks taken away: the data dir and the local backup repository
  (``repo``, when local) move into ``<parent>/.lost-host-<ts>/`` beside the data dir, where
  nothing of drconsole looks (kept, never deleted: what a drill compares, what a real host's
  disks would be if they came back). Only a node in a network namespace of its own can lose its
  host (the host's own network would be cut otherwise). What is left is the off-site copy.
  Undo: the report's ``mv`` lines.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engines.errors import EngineError
from engines.node.client import NodeClient
from engines.node.state import load_state
from faults.report import FaultChange, FaultError, FaultReport
from playbooks.actions.node_process import ServingProcess, serving_at, serving_process
from playbooks.netns import NetnsCommandError, set_cables

__all__ = ["CLUSTER_FAULTS"]


def _serving(data_dir: Path, pid: int | None) -> ServingProcess:
    serving = serving_process(data_dir)
    if serving is None:
        raise FaultError(f"no process holds {data_dir / 'drconsole.lock'}: no node serves it")
    if pid is not None and pid != serving.pid:
        raise FaultError(f"pid {pid} does not hold {data_dir}'s lock (pid {serving.pid} does)")
    return serving


def _role(data_dir: Path) -> str | None:
    try:
        state = load_state(data_dir)
    except EngineError:
        return None
    return state.role if state is not None else None


def _send(report: FaultReport, serving: ServingProcess, sig: signal.Signals, detail: str) -> None:
    os.kill(serving.pid, sig)
    report.changes.append(FaultChange(f"pid {serving.pid}", "signal", detail=f"{sig.name}: {detail}"))
    report.extra.update({"pid": serving.pid, "url": serving.url})


def _standby_lag(data_dir: Path, rng: random.Random, report: FaultReport, pid: int | None = None, **_: Any) -> None:
    if _role(data_dir) != "standby":
        raise FaultError(f"{data_dir} is not a standby's data dir (its node.json says {_role(data_dir)})")
    serving = _serving(data_dir, pid)
    _send(report, serving, signal.SIGSTOP, "the standby's follower stops applying")
    report.summary = (
        f"SIGSTOP to standby pid {serving.pid} ({serving.url}): it applies nothing more while the "
        f"primary takes writes; undo: kill -CONT {serving.pid}"
    )
    report.extra["undo"] = f"kill -CONT {serving.pid}"


def _primary_loss(data_dir: Path, rng: random.Random, report: FaultReport, pid: int | None = None, **_: Any) -> None:
    if _role(data_dir) not in (None, "primary"):
        raise FaultError(f"{data_dir} is not a primary's data dir (its node.json says {_role(data_dir)})")
    serving = _serving(data_dir, pid)
    _send(report, serving, signal.SIGKILL, "the primary dies")
    report.summary = f"SIGKILL to primary pid {serving.pid} ({serving.url}); its data dir is left as the crash left it"


def _split_brain(
    data_dir: Path, rng: random.Random, report: FaultReport, url: str | None = None, token: str | None = None, **_: Any
) -> None:
    state = load_state(data_dir)
    if state is None or state.role != "standby" or not state.upstream:
        raise FaultError(
            f"{data_dir} is not a standby's data dir: split-brain promotes a standby while its primary keeps running",
            hint="pass the standby's --data-dir",
        )
    serving = _serving(data_dir, None)
    standby = (url or "").rstrip("/") or serving.url
    primary = state.upstream.rstrip("/")
    if not standby:
        raise FaultError(f"cannot tell where the node serving {data_dir} listens", hint="pass url=")
    with (
        NodeClient(standby, token=token, timeout=10.0) as to_standby,
        NodeClient(primary, token=token, timeout=10.0) as to_primary,
    ):
        promoted = to_standby.promote()
        # While the old primary is promoted again, the new one is held stopped: neither sees the
        # other's promotion (as two sides of a partition do), so both end in the same epoch. Else
        # the old primary's peer poll could learn the new epoch in between and fence itself.
        os.kill(serving.pid, signal.SIGSTOP)
        try:
            to_primary.fence("split-brain drill: fenced for an instant, then promoted again", force=True)
            again = to_primary.promote()
        finally:
            os.kill(serving.pid, signal.SIGCONT)
    report.changes += [
        FaultChange(standby, "promote", detail=f"POST /admin/promote: primary in epoch {promoted.get('epoch')}"),
        FaultChange(
            primary,
            "promote",
            detail=f"POST /admin/fence then /admin/promote: primary in epoch "
            f"{again.get('epoch')} (pid {serving.pid} held by SIGSTOP meanwhile, "
            "then SIGCONT)",
        ),
    ]
    report.summary = (
        f"split brain: {standby} promoted (epoch {promoted.get('epoch')}) while {primary} kept running; "
        f"{primary} promoted again (epoch {again.get('epoch')}): two primaries take writes"
    )
    same = again.get("epoch") == promoted.get("epoch")
    if not same:
        # The old primary's peer poll saw the new epoch between the calls: the nodes will fence the
        # older primary themselves, which leaves a fenced node to rebuild rather than a split brain.
        report.summary += "; the epochs differ, so the nodes' peer polling fences the older one on its own"
    report.extra.update(
        {"primaries": [primary, standby], "epochs": [again.get("epoch"), promoted.get("epoch")], "same_epoch": same}
    )


def _cut(data_dir: Path, report: FaultReport, what: str, pid: int | None = None) -> None:
    serving = _serving(data_dir, pid)
    if serving.netns is None:
        raise FaultError(
            f"pid {serving.pid} ({serving.url}) is on this host's own network, not in a network "
            "namespace of its own: cutting its network would cut the host",
            hint="run the node under `ip netns exec NS` (drconsole drill run does, as root)",
        )
    try:
        pulled = set_cables(serving.netns, up=False)
    except NetnsCommandError as exc:
        raise FaultError(str(exc)) from exc
    if not pulled:
        raise FaultError(f"namespace {serving.netns} has no interface up to cut")
    for cable in pulled:
        report.changes.append(FaultChange(f"netns {serving.netns}", "link-down", detail=f"ip link set {cable} down"))
    undo = "; ".join(f"ip -n {serving.netns} link set {cable} up" for cable in pulled)
    report.summary = (
        f"pulled the network cable of pid {serving.pid} ({serving.url}, namespace {serving.netns}): "
        f"{what}; it keeps running; undo: {undo}"
    )
    report.extra.update(
        {
            "pid": serving.pid,
            "url": serving.url,
            "netns": serving.netns,
            "cables": pulled,
            "method": "link down",
            "undo": undo,
        }
    )


def _host_loss(
    data_dir: Path, rng: random.Random, report: FaultReport, pid: int | None = None, repo: Path | None = None, **_: Any
) -> None:
    serving = _serving(data_dir, pid)
    if serving.netns is None:
        raise FaultError(
            f"pid {serving.pid} ({serving.url}) runs on this host's own network: losing its host would lose this one",
            hint="run the node under `ip netns exec NS` (drconsole drill run host-loss does, as root)",
        )
    disks = [data_dir] + ([Path(repo).absolute()] if repo is not None and "://" not in str(repo) else [])
    missing = [str(path) for path in disks if not path.is_dir()]
    if missing:
        raise FaultError(f"{', '.join(missing)}: not a directory; nothing was changed")
    _send(report, serving, signal.SIGKILL, "the host dies with its node")
    try:
        os.waitpid(serving.pid, 0)  # our own child (a drill's node): reaped, so its lock is released
    except ChildProcessError:
        pass
    try:
        pulled = set_cables(serving.netns, up=False)
    except NetnsCommandError as exc:
        raise FaultError(f"the node was killed but its cables could not be pulled: {exc}") from exc
    for cable in pulled:
        report.changes.append(FaultChange(f"netns {serving.netns}", "link-down", detail=f"ip link set {cable} down"))
    lost = data_dir.parent / f".lost-host-{int(time.time())}-{rng.randrange(16**6):06x}"
    lost.mkdir()
    undo: list[str] = []
    for disk in disks:
        target = lost / f"{len(undo)}-{disk.name}"
        os.replace(disk, target)
        report.changes.append(FaultChange(str(disk), "move", detail=f"the host's disk: moved to {target}"))
        undo.append(f"mv {target} {disk}")
    report.summary = (
        f"host of pid {serving.pid} ({serving.url}, namespace {serving.netns}) lost: node killed, "
        f"cables pulled, {' and '.join(str(disk) for disk in disks)} gone (kept in {lost})"
    )
    report.extra.update(
        {
            "pid": serving.pid,
            "url": serving.url,
            "netns": serving.netns,
            "lost_disks": str(lost),
            "undo": "; ".join(undo),
        }
    )


def _isolated_node(data_dir: Path, rng: random.Random, report: FaultReport, pid: int | None = None, **_: Any) -> None:
    _cut(data_dir, report, "no peer and no client outside its namespace reaches it", pid)


def _network_partition(
    data_dir: Path, rng: random.Random, report: FaultReport, pid: int | None = None, **_: Any
) -> None:
    _cut(data_dir, report, "its side of the partition (clients in its namespace) goes on writing to it", pid)


def _named_peers(serving: ServingProcess) -> list[str]:
    named, take = [], False
    for argument in serving.cmdline:
        if take:
            named.append(argument.rstrip("/"))
        take = argument in ("--peer", "--follow")
    return list(dict.fromkeys(named))


def _kill_nodes(data_dir: Path, report: FaultReport, count: int | None) -> None:
    serving = _serving(data_dir, None)
    victims = [serving]
    for url in _named_peers(serving):
        peer = serving_at(url)
        if peer is not None and peer.pid not in {victim.pid for victim in victims}:
            victims.append(peer)
    victims = victims[:count] if count else victims
    if count and len(victims) < count:
        raise FaultError(f"only {len(victims)} node(s) of {serving.url}'s cluster run on this host; {count} needed")
    for victim in victims:
        _send(report, victim, signal.SIGKILL, "the node dies")
    report.summary = (
        f"SIGKILL to {len(victims)} node(s): "
        + ", ".join(f"pid {v.pid} ({v.url})" for v in victims)
        + "; their data dirs are left as the crash left them"
    )
    report.extra.update({"pids": [v.pid for v in victims], "urls": [v.url for v in victims]})


def _two_node_loss(data_dir: Path, rng: random.Random, report: FaultReport, **_: Any) -> None:
    _kill_nodes(data_dir, report, 2)


def _total_cluster_loss(data_dir: Path, rng: random.Random, report: FaultReport, **_: Any) -> None:
    _kill_nodes(data_dir, report, None)


CLUSTER_FAULTS: dict[str, tuple[Callable[..., None], str]] = {
    "standby-lag": (_standby_lag, "SIGSTOP of a standby: it stops applying while the primary takes writes"),
    "primary-loss": (_primary_loss, "SIGKILL of a primary node's process"),
    "split-brain": (_split_brain, "a standby promoted while its primary keeps running: two primaries, one epoch"),
    "isolated-node": (_isolated_node, "a node's network cable pulled (its namespace's links down); it runs on"),
    "network-partition": (_network_partition, "a primary cut off (links down) while clients on its side write on"),
    "two-node-loss": (_two_node_loss, "SIGKILL of a node and of the first peer it names: two of three lost"),
    "total-cluster-loss": (_total_cluster_loss, "SIGKILL of a node and of every node it names"),
    "host-loss": (_host_loss, "a node's host lost: killed, cables pulled, data dir and local repository gone"),
}
