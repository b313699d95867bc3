"""Done means verified: an incident resolves when the node serves again after a run whose checks passed.

    outcome = verify_recovery(store, "orders-a")              # GET <url>/ready after the run; resolves on 200
    outcome.resolved, outcome.why

Two facts make a recovery verified, and the RTO clock stops at the moment the second is seen:
the last run on the incident ended with every check passed (recorded by the runner, local or on
the node), and the target serves again: a node with a URL answers ``GET /ready`` with 200 (its
write+read probe); a data dir no process serves opens (the runner checks that itself at the end
of the run). ``IncidentStore.record_verified`` writes the resolution; this module finds the facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engines.errors import EngineError
from playbooks.incident_model import Incident
from playbooks.incident_store import IncidentStore

__all__ = ["Verification", "node_ready", "engine_opens", "verify_recovery"]


@dataclass(frozen=True)
class Verification:
    resolved: bool
    why: str
    incident: Incident | None = None


def node_ready(url: str, *, timeout: float = 2.0) -> tuple[bool, str]:
    """Whether the node at ``url`` answers ``GET /ready`` with 200, and what it said."""
    from engines.node.client import NodeClient

    try:
        with NodeClient(url, timeout=timeout, read_only=True) as client:
            body = client.ready()
    except EngineError as exc:
        return False, f"GET {url}/ready: {exc.message}"
    if body.get("ready") is True:
        return True, f"GET {url}/ready answered 200 ({body.get('probe', 'probe')} ok, role {body.get('role', '?')})"
    reason = body.get("error") or body.get("reason") or "not ready"
    return False, f"GET {url}/ready answered 503: {reason}"


def engine_opens(data_dir: str | Path) -> tuple[bool, str]:
    """Whether the data dir opens (read-only: nothing is written), and what it is."""
    from engines import open_engine

    try:
        with open_engine(Path(data_dir), mode="ro") as engine:
            stats = engine.stats()
    except EngineError as exc:
        return False, f"{data_dir} does not open: {exc.message}"
    return True, f"{data_dir} opens ({stats.backend}, {stats.total_keys} keys, LSN {stats.last_lsn})"


def verify_recovery(
    store: IncidentStore,
    target: str,
    *,
    url: str | None = None,
    data_dir: str | Path | None = None,
    timeout: float = 2.0,
) -> Verification:
    """Resolve the open incident on ``target`` if its last run's checks passed and the target serves again.

    ``url`` (else the one the run recorded) is asked ``/ready``; with no URL, ``data_dir`` must open.
    The resolution is timed when the answer came, not when the run ended.
    """
    incident = store.open_for(target)
    if incident is None:
        return Verification(False, f"no open incident on {target}")
    run = incident.last_run
    if run is None or run.finished_at is None:
        return Verification(
            False,
            f"{incident.id}: no run has finished on it yet; run the recommended playbook, "
            "or close it by hand with the reason",
            incident,
        )
    if not incident.awaiting_verification:
        return Verification(
            False,
            f"{incident.id}: the last run ({run.playbook}, {run.status}"
            f"{', partially' if run.partial else ''}) did not pass all its checks",
            incident,
        )
    url = url or incident.ready_url
    if url:
        ready, evidence = node_ready(url, timeout=timeout)
    elif data_dir is not None:
        ready, evidence = engine_opens(data_dir)
    else:
        return Verification(False, f"{incident.id}: no node URL or data dir to check {target} with", incident)
    moment = store.clock()
    if not ready:
        return Verification(False, evidence, incident)
    passed = f"{evidence}; run {run.run_id} ({run.playbook}) passed its checks"
    resolved = store.record_verified(target, evidence=passed, at=moment, run_id=run.run_id)
    return Verification(resolved is not None, evidence, resolved)
