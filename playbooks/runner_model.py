"""What a run is made of: the options it was asked with, each step's outcome, the result, and the run itself.

``Run`` is the one object the runner's methods pass around: the target (data dir, backend, node),
the plan and its parameters, the journal, the options, the safety-copy state, and what the steps
have returned so far. Its ``header()`` is the journal's ``run_started`` record, and ``from_header``
reads it back when a run is resumed, so the on-disk journal keeps its format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playbooks.actions import ActionContext
from playbooks.journal import Journal
from playbooks.models import Playbook
from playbooks.plan import PlannedStep, plan_from_json

__all__ = [
    "Confirm",
    "RunOptions",
    "StepOutcome",
    "RunResult",
    "Run",
    "SafetyCopyState",
    "STEP_STATUSES",
    "RUN_STATUSES",
]

Confirm = Callable[[PlannedStep, str], bool]

# The one vocabulary of a step's final status (the journal's, the events', the JSON's); renderers
# add only what a step is while the run goes (console.adapters.run_view: running, waiting, not-run).
# problem: a diagnostic step found what it looks for (not a failure); planned: a dry run's step.
STEP_STATUSES = ("succeeded", "problem", "skipped", "failed", "refused", "planned")
RUN_STATUSES = ("succeeded", "failed", "refused")


@dataclass
class RunOptions:
    params: dict[str, Any] = field(default_factory=dict)
    param_defaults: dict[str, Any] = field(default_factory=dict)  # from the node's config (backup_repo)
    assume_yes: bool = False
    dry_run: bool = False
    read_only: bool = False
    # Run against a copy of the data dir made in the run's own directory (``--simulate`` on the CLI):
    # the steps really run, on the copy; the data dir itself is not touched and no incident is opened.
    sandbox: bool = False
    waive_safety_copy: str | None = None  # the reason, audited
    node: str | None = None
    confirm: Confirm | None = None  # asks at each destructive step (the TUI); None: assume_yes decides
    webhook: str | None = None
    escalation: list[str] | None = None
    open_incident: bool = True
    # The URL of the node that serves this data dir: the incident then resolves when it answers
    # /ready (playbooks.incident_verify), not when the run ends. None: nobody serves it, and the
    # incident resolves when the run's checks pass and the data dir opens.
    ready_url: str | None = None


@dataclass
class StepOutcome:
    id: str
    action: str
    status: str  # one of STEP_STATUSES
    duration_seconds: float = 0.0
    summary: str = ""
    attempts: int = 0
    destructive: bool = False
    would_touch: list[str] = field(default_factory=list)
    when: str | None = None
    # When it ended (epoch seconds), so an incident recorded after the run (a run on a node's agent)
    # places each step where it happened, not at the moment the result arrived.
    finished_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "duration_seconds": round(self.duration_seconds, 3),
            "action": self.action,
            "summary": self.summary,
            "destructive": self.destructive,
        }
        if self.attempts > 1:
            row["attempts"] = self.attempts
        if self.would_touch:
            row["would_touch"] = self.would_touch
        if self.when:
            row["when"] = self.when
        if self.finished_at is not None:
            row["finished_at"] = round(self.finished_at, 3)
        return row

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> StepOutcome:
        return cls(
            record["step"],
            record.get("action", ""),
            record["status"],
            record.get("duration_seconds", 0.0),
            record.get("summary", ""),
            record.get("attempts", 1),
            record.get("destructive", False),
        )


@dataclass
class RunResult:
    run_id: str | None
    playbook: str
    status: str  # one of RUN_STATUSES
    steps: list[StepOutcome]
    data_dir: str | None = None
    backend: str | None = None
    dry_run: bool = False
    partial: bool = False
    message: str = ""
    journal: str | None = None
    incident: str | None = None
    escalation: list[str] | None = None
    sandboxed_from: str | None = None  # a sandbox run: the data dir that was copied (and left alone)
    lost: list[str] = field(default_factory=list)  # the final accounting: not recovered, in quarantine
    recovered: list[str] = field(default_factory=list)  # reported lost by a step, re-applied by a later one
    verified: str | None = None  # the incident resolved: the evidence the target serves again
    exit_code_hint: int | None = None
    # Through a node's agent: when the node had reopened its engine and answered /ready after a
    # run that succeeded (the moment the recovery is verified), and the node's URL.
    verified_ready_at: float | None = None
    node_url: str | None = None

    @property
    def exit_code(self) -> int:
        if self.exit_code_hint is not None:
            return self.exit_code_hint
        return {"succeeded": 0, "failed": 1, "refused": 4}.get(self.status, 1)

    def to_json(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "run_id": self.run_id,
            "playbook": self.playbook,
            "status": self.status,
            "steps": [step.to_json() for step in self.steps],
            "data_dir": self.data_dir,
            "backend": self.backend,
        }
        for key in ("dry_run", "partial"):
            if getattr(self, key):
                payload[key] = True
        for key in (
            "message",
            "journal",
            "incident",
            "escalation",
            "sandboxed_from",
            "lost",
            "recovered",
            "verified",
            "verified_ready_at",
            "node_url",
        ):
            if getattr(self, key):
                payload[key] = getattr(self, key)
        return payload


@dataclass
class SafetyCopyState:
    """Whether the data dir is protected before the next destructive step: copied, or the copy waived."""

    taken: bool = False
    waived: str | None = None  # the reason given with --waive-safety-copy
    waiver_audited: bool = False


@dataclass
class Run:
    """One run of a playbook on one target, from its plan to its result."""

    run_id: str
    playbook: str
    title: str
    severity: str
    target_rto_seconds: float | None
    data_dir: Path
    backend: str | None
    node: str | None
    params: dict[str, Any]
    plan: list[PlannedStep]
    options: RunOptions
    who: dict[str, Any]
    assume_yes: bool = False
    sandboxed_from: str | None = None
    wants_incident: bool = False
    ready_url: str | None = None
    started_at: float | None = None  # from the journal when resumed; the steps' start otherwise
    journal: Journal | None = None
    safety: SafetyCopyState = field(default_factory=SafetyCopyState)
    # Filled as the steps run.
    context: ActionContext | None = None  # what every action of the run starts from
    variables: dict[str, Any] = field(default_factory=dict)  # the run variables step arguments name
    incident: str | None = None
    history: dict[str, dict[str, Any]] = field(default_factory=dict)  # step id -> its result's namespace
    verified_ready_at: float | None = None

    @classmethod
    def new(
        cls,
        run_id: str,
        playbook: Playbook,
        data_dir: Path,
        backend: str | None,
        params: dict[str, Any],
        plan: list[PlannedStep],
        options: RunOptions,
        who: dict[str, Any],
        sandboxed_from: str | None,
    ) -> Run:
        return cls(
            run_id=run_id,
            playbook=playbook.id,
            title=playbook.title,
            severity=playbook.severity,
            target_rto_seconds=playbook.target_rto_seconds,
            data_dir=data_dir,
            backend=backend,
            node=options.node,
            params=params,
            plan=plan,
            options=options,
            who=who,
            assume_yes=options.assume_yes,
            sandboxed_from=sandboxed_from,
            wants_incident=bool(playbook.incident and options.open_incident and not options.sandbox),
            ready_url=options.ready_url,
            safety=SafetyCopyState(waived=options.waive_safety_copy),
        )

    @classmethod
    def from_header(cls, header: dict[str, Any], options: RunOptions) -> Run:
        """The run a journal's ``run_started`` record describes, resumed with ``options``."""
        return cls(
            run_id=header["run_id"],
            playbook=header["playbook"],
            title=header.get("title", header["playbook"]),
            severity=header.get("severity", "P2"),
            target_rto_seconds=header.get("target_rto_seconds"),
            data_dir=Path(header["data_dir"]),
            backend=header.get("backend"),
            node=header.get("node"),
            params=header["params"],
            plan=plan_from_json(header["plan"]),
            options=options,
            who=header.get("who") or {},
            assume_yes=bool(header.get("assume_yes")),
            # "simulated_from": the key of journals written before the runner's copy was called a sandbox.
            sandboxed_from=header.get("sandboxed_from") or header.get("simulated_from"),
            wants_incident=bool(header.get("incident")),
            ready_url=header.get("ready_url"),
            started_at=header.get("time"),
            safety=SafetyCopyState(waived=header.get("waive_safety_copy")),
        )

    def header(self) -> dict[str, Any]:
        """The journal's ``run_started`` record."""
        return {
            "run_id": self.run_id,
            "playbook": self.playbook,
            "title": self.title,
            "severity": self.severity,
            "target_rto_seconds": self.target_rto_seconds,
            "data_dir": str(self.data_dir),
            "backend": self.backend,
            "node": self.node,
            "params": self.params,
            "plan": [step.to_json() for step in self.plan],
            "assume_yes": self.assume_yes,
            "waive_safety_copy": self.safety.waived,
            "sandboxed_from": self.sandboxed_from,
            "incident": self.wants_incident,
            "ready_url": self.ready_url,
            "who": self.who,
        }

    @property
    def target(self) -> str:
        """What the run acts on, as people name it: the node, else the data dir."""
        return self.node or str(self.data_dir)

    def log_journal(self) -> Journal:
        assert self.journal is not None, "the run's journal is opened before its steps run"
        return self.journal
