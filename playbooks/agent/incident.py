"""The responder's incident for a run on a node's agent: kept where the responder triaged.

A local run records itself in the incident of its target (``Runner._incident``); a run through
the agent happens on the node's host, so this side joins (or opens) the incident of the node by
its name, as ``drconsole triage --node NAME`` did, and records the run as the local runner would:
``run_started``, each step, ``run_finished`` (with ``checks_passed``, the final ``lost`` and
``recovered`` accounting and the node's URL), and, when the node reported it had reopened and
answered ``/ready`` after a run that passed its checks, ``record_verified`` at that moment: the
incident resolves and its RTO clock stops there, not when this side heard of it.
"""

from __future__ import annotations

from typing import Any

from engines.errors import DrconsoleError
from playbooks.incident_store import IncidentStore
from playbooks.runner import RunResult
from playbooks.severity import LEVELS
from playbooks.state import Actor, StateDir

__all__ = ["open_remote_incident", "record_remote_run"]


def _playbook(library: Any | None, playbook_id: str) -> Any | None:
    from playbooks.loader import Library

    try:
        return (library or Library.load()).get(playbook_id)
    except DrconsoleError:
        return None  # a playbook only the node has: no incident on this side


def open_remote_incident(
    state: StateDir, playbook_id: str, *, node: str, actor: Actor, run_id: str, library: Any | None = None
) -> str | None:
    """Join (or open) the node's incident for a run that starts; its id, or None (a routine playbook)."""
    playbook = _playbook(library, playbook_id)
    if playbook is None or not playbook.incident:
        return None
    store = IncidentStore(state)
    try:
        incident = store.open_for(node)
        if incident is None:
            incident, _created = store.open(
                node,
                severity=playbook.severity,
                title=f"{playbook.title} on {node}",
                target_rto_seconds=float(playbook.target_rto_seconds or 0)
                or float(LEVELS[playbook.severity].response_seconds),
                rto_basis=f"playbook {playbook_id}",
                recommended=[playbook_id],
                actor=actor,
            )
        store.record(
            incident.id,
            "run_started",
            f"playbook {playbook_id} run {run_id} started on the node's agent",
            actor=actor,
            run_id=run_id,
            playbook=playbook_id,
        )
    except DrconsoleError:
        return None
    return incident.id


def record_remote_run(state: StateDir, result: RunResult, *, node: str, actor: Actor, incident: str | None) -> None:
    """Record a finished remote run in ``incident`` (None: nothing to record) and resolve it when verified."""
    if incident is None or result.dry_run:
        return
    store = IncidentStore(state)
    checks_passed = result.status == "succeeded" and not result.partial
    try:
        for step in result.steps:
            if step.status == "planned":
                continue
            store.record(
                incident,
                "step",
                f"{step.id}: {step.summary}",
                actor=actor,
                at=step.finished_at,  # when it ended on the node, not when the result came back
                step=step.id,
                status=step.status,
                run_id=result.run_id,
            )
        store.record(
            incident,
            "run_finished",
            f"playbook {result.playbook} {result.status} on the node's agent"
            + (" (partially)" if result.partial else "")
            + (f": {result.message}" if result.message else ""),
            actor=actor,
            run_id=result.run_id,
            playbook=result.playbook,
            status=result.status,
            partial=result.partial,
            checks_passed=checks_passed,
            lost=result.lost,
            recovered=result.recovered,
            ready_url=result.node_url,
        )
        if checks_passed and result.verified_ready_at is not None:
            evidence = (
                f"{node} ({result.node_url}) reopened its engine and answered /ready after run "
                f"{result.run_id} ({result.playbook}) passed its checks"
            )
            if (
                store.record_verified(
                    node, evidence=evidence, at=result.verified_ready_at, run_id=result.run_id, actor=actor
                )
                is not None
            ):
                result.verified = evidence
    except DrconsoleError:
        return
