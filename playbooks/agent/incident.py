"""The responder's incident for a run on a node's agent: kept where the responder triaged.

A local run records itself in the incident of its target (``Runner._incident``); a run through
the agent happens on the node's host, so this side opens (or joins) the incident of the node by
its name, as ``drconsole triage --node NAME`` did, and records the run, its steps and, once the
node answered ``/ready`` after a successful run, the moment the recovery was verified.
"""

from __future__ import annotations

from typing import Any

from engines.errors import EngineError
from playbooks.incidents import IncidentStore
from playbooks.runner import RunResult
from playbooks.state import Actor, StateDir

__all__ = ["open_remote_incident", "record_remote_run", "record_recovery_verified"]


def _playbook(library: Any | None, playbook_id: str) -> Any | None:
    from playbooks.loader import Library

    try:
        return (library or Library.load()).get(playbook_id)
    except EngineError:
        return None  # a playbook only the node has: no incident on this side


def open_remote_incident(state: StateDir, playbook_id: str, *, node: str, actor: Actor, run_id: str,
                         library: Any | None = None) -> str | None:
    """Open (or join) the node's incident for a run that starts; its id, or None (routine playbook)."""
    playbook = _playbook(library, playbook_id)
    if playbook is None or not playbook.incident:
        return None
    store = IncidentStore(state)
    try:
        incident = store.open(node, severity=playbook.severity, title=f"{playbook.title} on {node}", actor=actor)
        store.record(incident.id, "run_started", f"playbook {playbook_id} run {run_id} started on the node's agent",
                     actor=actor, run_id=run_id, playbook=playbook_id)
    except EngineError:
        return None
    return incident.id


def record_remote_run(state: StateDir, result: RunResult, *, node: str, actor: Actor,
                      incident: str | None) -> None:
    """Record a finished remote run's steps and outcome in ``incident`` (None: nothing to record)."""
    if incident is None or result.dry_run:
        return
    store = IncidentStore(state)
    try:
        for step in result.steps:
            if step.status in ("planned",):
                continue
            store.record(incident, "step", f"{step.id}: {step.summary}", actor=actor, step=step.id,
                         status=step.status, run_id=result.run_id)
        store.record(incident, "run_finished", f"playbook {result.playbook} {result.status}"
                     + (" (partially)" if result.partial else "") + (f": {result.message}" if result.message else ""),
                     actor=actor, run_id=result.run_id, playbook=result.playbook, status=result.status,
                     lost=result.lost or None)
        if result.verified_ready_at is not None:
            record_recovery_verified(store, incident, at=result.verified_ready_at, actor=actor, node=node,
                                     run_id=result.run_id)
    except EngineError:
        return


def record_recovery_verified(store: IncidentStore, incident: str, *, at: float, actor: Actor, node: str,
                             run_id: str | None) -> None:
    """THE call site for "recovery verified at T" (the node reopened, answered /ready, checks passed).

    The incident model (issue 15, branch ``incident``) owns what this means for the incident (it
    resolves there; the RTO clock stops at ``at``); until it provides its function this records
    the moment as a timeline event of its own.
    """
    store.record(incident, "recovery_verified", f"recovery verified: {node} reopened and answered /ready",
                 actor=actor, run_id=run_id, verified_at=at)
