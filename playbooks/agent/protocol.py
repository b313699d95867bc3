"""The agent's wire format, shared by the node's routes (``api.py``) and the client (``client.py``).

Routes (all behind the node's bearer token; bodies and answers are JSON objects)::

    GET  /agent/playbooks                    the node's library: [{id, title, severity, destructive, backends}]
    POST /agent/runs                         start a run: StartRequest -> 202 {run_id, status, after: 0, plan}
                                             (a dry run answers 200 {result} at once, nothing changed)
    GET  /agent/runs                         {runs: [RunInfo...]} every run in the node's journal folder
    GET  /agent/runs/{id}                    RunInfo: {run_id, playbook, status, live, pending_confirmation,
                                             events, plan, result|null}
    GET  /agent/runs/{id}/events?after=N&wait=S
                                             the run's events after sequence number N as JSON lines
                                             (``application/x-ndjson``, streamed as they happen):
                                             {"seq": n, "event": RunEvent.to_json()}; the stream ends
                                             with {"end": true, "status", "live"} when the run is over
                                             or after S seconds (default 30, at most 300): reconnect
                                             with the last seq seen and nothing is lost
    POST /agent/runs/{id}/confirm            {step, typed} (typed: the node name) or {step, decline: true}
                                             -> {accepted: bool, reason}
    POST /agent/runs/{id}/cancel             -> {cancelled: true, status}
    POST /agent/runs/{id}/resume             ResumeRequest -> 202 {run_id, status, after, attached}
                                             (a live run is attached to; a cut-off one resumes from its
                                             journal at the step it was in)

Every request carries who is acting (``X-Drconsole-Actor``: JSON ``{user, ssh_client}``); the node
writes it, with the address the request came from, in its audit log and journal.

Errors are the node's usual ``{error, hint, kind}`` plus ``exit_code`` (the CLI contract's), so
the client raises an error with the same exit code a local run would have given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from engines.errors import EngineError
from playbooks.events import RunEvent
from playbooks.runner import RunOptions, RunResult, StepOutcome
from playbooks.state import Actor

__all__ = [
    "PREFIX",
    "ACTOR_HEADER",
    "StartRequest",
    "result_from_json",
    "event_from_json",
    "actor_header",
    "actor_from_header",
    "RemoteError",
    "MAX_EVENT_WAIT",
    "DEFAULT_EVENT_WAIT",
]

PREFIX = "/agent"
ACTOR_HEADER = "x-drconsole-actor"
DEFAULT_EVENT_WAIT = 30.0
MAX_EVENT_WAIT = 300.0


class RemoteError(EngineError):
    """An error the node's agent answered with; ``exit_code`` is the one the node reported."""

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = 1, kind: str = "") -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code
        self.kind = kind


@dataclass
class StartRequest:
    """What a client sends to start (or resume) a run; the JSON of ``RunOptions`` that can travel.

    ``interactive``: the client answers confirmations itself (``options.confirm`` is set); without
    it and without ``assume_yes`` a destructive plan is refused up front, as a local run does.
    """

    playbook: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    param_defaults: dict[str, Any] = field(default_factory=dict)
    assume_yes: bool = False
    dry_run: bool = False
    read_only: bool = False
    # The wire name of RunOptions.sandbox, as the CLI flag --simulate: a node that did not know a new
    # name would ignore it and run on the real data dir, so the field keeps its name.
    simulate: bool = False
    waive_safety_copy: str | None = None
    node: str | None = None
    interactive: bool = False
    open_incident: bool = True

    @classmethod
    def from_options(cls, playbook: str, options: RunOptions) -> StartRequest:
        return cls(
            playbook=playbook,
            params={key: _plain(value) for key, value in options.params.items()},
            param_defaults={key: _plain(value) for key, value in options.param_defaults.items()},
            assume_yes=options.assume_yes,
            dry_run=options.dry_run,
            read_only=options.read_only,
            simulate=options.sandbox,
            waive_safety_copy=options.waive_safety_copy,
            node=options.node,
            interactive=options.confirm is not None,
            open_incident=options.open_incident,
        )

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> StartRequest:
        known = {name: body[name] for name in cls.__dataclass_fields__ if name in body}
        request = cls(**known)
        if not isinstance(request.params, dict) or not isinstance(request.param_defaults, dict):
            raise ValueError("params and param_defaults must be JSON objects")
        return request

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def options(self) -> RunOptions:
        return RunOptions(
            params=dict(self.params),
            param_defaults=dict(self.param_defaults),
            assume_yes=bool(self.assume_yes),
            dry_run=bool(self.dry_run),
            read_only=bool(self.read_only),
            sandbox=bool(self.simulate),
            waive_safety_copy=self.waive_safety_copy,
            node=self.node,
            open_incident=bool(self.open_incident),
        )


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def result_from_json(payload: dict[str, Any]) -> RunResult:
    """A ``RunResult`` from its ``to_json()`` (what the node answers)."""
    steps = [
        StepOutcome(
            row["id"],
            row.get("action", ""),
            row.get("status", "failed"),
            float(row.get("duration_seconds") or 0.0),
            row.get("summary", ""),
            int(row.get("attempts", 1)),
            bool(row.get("destructive", False)),
            list(row.get("would_touch", [])),
            row.get("when"),
            float(row["finished_at"]) if row.get("finished_at") is not None else None,
        )
        for row in payload.get("steps", [])
    ]
    return RunResult(
        payload.get("run_id"),
        payload.get("playbook", ""),
        payload.get("status", "failed"),
        steps,
        payload.get("data_dir"),
        payload.get("backend"),
        dry_run=bool(payload.get("dry_run")),
        partial=bool(payload.get("partial")),
        message=payload.get("message", ""),
        journal=payload.get("journal"),
        incident=payload.get("incident"),
        escalation=payload.get("escalation"),
        sandboxed_from=payload.get("sandboxed_from") or payload.get("simulated_from"),  # an older node's key
        lost=list(payload.get("lost", [])),
        recovered=list(payload.get("recovered", [])),
        verified=payload.get("verified"),
        verified_ready_at=payload.get("verified_ready_at"),
        node_url=payload.get("node_url"),
        exit_code_hint=payload.get("exit_code_hint"),
    )


def event_from_json(payload: dict[str, Any]) -> RunEvent:
    known = {name: payload[name] for name in RunEvent.__dataclass_fields__ if name in payload}
    return RunEvent(**known)


def actor_header(actor: Actor) -> str:
    return json.dumps(actor.to_json(), separators=(",", ":"))


def actor_from_header(text: str | None, peer: str | None) -> Actor:
    """Who acts, as the client said, with the address the request came from; unknown when not said."""
    user, ssh_client = "unknown", None
    if text:
        try:
            data = json.loads(text)
        except ValueError:
            data = {}
        if isinstance(data, dict):
            user = str(data.get("user") or "unknown")[:128]
            ssh_client = str(data["ssh_client"])[:128] if data.get("ssh_client") else None
    return Actor(user=user, ssh_client=ssh_client, via=f"agent request from {peer or '?'}")
