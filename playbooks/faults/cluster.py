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
* ``isolated-node``: the node has no admin endpoint that drops peer traffic, and cutting a
  loopback link needs root, so the node is SIGSTOPped: on one machine, the closest honest
  isolation (no peer, and no client either, reaches it). The report says which.
"""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engines.errors import EngineError
from engines.node.client import NodeClient
from engines.node.state import load_state
from playbooks.actions.node_process import ServingProcess, serving_process
from playbooks.faults.report import FaultChange, FaultError, FaultReport

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


def _standby_lag(data_dir: Path, rng: random.Random, report: FaultReport, pid: int | None = None,
                 **_: Any) -> None:
    if _role(data_dir) != "standby":
        raise FaultError(f"{data_dir} is not a standby's data dir (its node.json says {_role(data_dir)})")
    serving = _serving(data_dir, pid)
    _send(report, serving, signal.SIGSTOP, "the standby's follower stops applying")
    report.summary = (f"SIGSTOP to standby pid {serving.pid} ({serving.url}): it applies nothing more while the "
                      f"primary takes writes; undo: kill -CONT {serving.pid}")
    report.extra["undo"] = f"kill -CONT {serving.pid}"


def _primary_loss(data_dir: Path, rng: random.Random, report: FaultReport, pid: int | None = None,
                  **_: Any) -> None:
    if _role(data_dir) not in (None, "primary"):
        raise FaultError(f"{data_dir} is not a primary's data dir (its node.json says {_role(data_dir)})")
    serving = _serving(data_dir, pid)
    _send(report, serving, signal.SIGKILL, "the primary dies")
    report.summary = f"SIGKILL to primary pid {serving.pid} ({serving.url}); its data dir is left as the crash left it"


def _split_brain(data_dir: Path, rng: random.Random, report: FaultReport, url: str | None = None,
                 token: str | None = None, **_: Any) -> None:
    state = load_state(data_dir)
    if state is None or state.role != "standby" or not state.upstream:
        raise FaultError(f"{data_dir} is not a standby's data dir: split-brain promotes a standby while its "
                         "primary keeps running", hint="pass the standby's --data-dir")
    serving = _serving(data_dir, None)
    standby = (url or "").rstrip("/") or serving.url
    primary = state.upstream.rstrip("/")
    if not standby:
        raise FaultError(f"cannot tell where the node serving {data_dir} listens", hint="pass url=")
    with NodeClient(standby, token=token, timeout=10.0) as to_standby, \
            NodeClient(primary, token=token, timeout=10.0) as to_primary:
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
        FaultChange(primary, "promote", detail=f"POST /admin/fence then /admin/promote: primary in epoch "
                                               f"{again.get('epoch')} (pid {serving.pid} held by SIGSTOP meanwhile, "
                                               "then SIGCONT)"),
    ]
    report.summary = (f"split brain: {standby} promoted (epoch {promoted.get('epoch')}) while {primary} kept running; "
                      f"{primary} promoted again (epoch {again.get('epoch')}): two primaries take writes")
    same = again.get("epoch") == promoted.get("epoch")
    if not same:
        # The old primary's peer poll saw the new epoch between the calls: the nodes will fence the
        # older primary themselves, which leaves a fenced node to rebuild rather than a split brain.
        report.summary += "; the epochs differ, so the nodes' peer polling fences the older one on its own"
    report.extra.update({"primaries": [primary, standby], "epochs": [again.get("epoch"), promoted.get("epoch")],
                         "same_epoch": same})


def _isolated_node(data_dir: Path, rng: random.Random, report: FaultReport, pid: int | None = None,
                   **_: Any) -> None:
    serving = _serving(data_dir, pid)
    _send(report, serving, signal.SIGSTOP, "cut off from its peers")
    report.summary = (f"SIGSTOP to pid {serving.pid} ({serving.url}): no admin endpoint drops peer traffic and a "
                      "loopback link cannot be cut without root, so the node is stopped: no peer (and no client) "
                      f"reaches it; undo: kill -CONT {serving.pid}")
    report.extra.update({"method": "SIGSTOP", "undo": f"kill -CONT {serving.pid}"})


CLUSTER_FAULTS: dict[str, tuple[Callable[..., None], str]] = {
    "standby-lag": (_standby_lag, "SIGSTOP of a standby: it stops applying while the primary takes writes"),
    "primary-loss": (_primary_loss, "SIGKILL of a primary node's process"),
    "split-brain": (_split_brain, "a standby promoted while its primary keeps running: two primaries, one epoch"),
    "isolated-node": (_isolated_node, "a node cut off from its peers (SIGSTOP on one machine; the report says so)"),
}
