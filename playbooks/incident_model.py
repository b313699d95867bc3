"""The incident: one outage on one target, from the diagnosis that found it to the node serving again.

    incident.id                 "INC-20261206-002" (UTC day, number of the day)
    incident.severity           "P0".."P3": the diagnosis' (playbooks.severity), raised, never lowered
    incident.status             "open" | "resolved" (verified serving again) | "closed" (by hand, with a reason)
    incident.clock_seconds(now) the RTO clock: opened_at -> resolved_at (or now while open)
    incident.target_rto_seconds the recommended playbook's target, else the severity's response time
    incident.events             the timeline, oldest first (``IncidentEvent``)

An incident is the fold of its events (``fold``): the store (``playbooks.incident_store``) appends
them to one JSONL file, and every face (console, CLI, report, webhook) reads the same fold, so
they show the same id, severity, clock and events. Event kinds are the words in ``KINDS``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from playbooks.severity import LEVELS, rank

__all__ = [
    "KINDS",
    "IncidentEvent",
    "RecordedAnswer",
    "RunRecord",
    "Incident",
    "fold",
    "rto_target",
    "iso",
    "duration_text",
]

# The kinds of events an incident's timeline holds (the ``type`` of a JSONL row).
KINDS = (
    "opened",
    "severity",
    "triage",
    "answer",
    "override",
    "answer_undone",
    "alert",
    "alert_cleared",
    "playbook_chosen",
    "run_started",
    "step",
    "confirmation",
    "run_finished",
    "verified",
    "closed",
    "export",
    "note",
    "drill",
    "silence",
    "source",
)
_TOP_LEVEL = ("type", "time", "message", "who", "node")


def iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def duration_text(seconds: float | None) -> str:
    """A short duration: "38s", "4m12s", "3h12m", "1d2h"; "—" when unknown."""
    if seconds is None:
        return "—"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s" if seconds else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h" if hours else f"{days}d"


@dataclass(frozen=True)
class IncidentEvent:
    """One row of the timeline: when (epoch seconds), what kind, what happened, on which node, by whom."""

    time: float
    kind: str
    message: str
    node: str | None = None
    who: dict[str, Any] | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.time, UTC)

    @property
    def user(self) -> str | None:
        return str(self.who["user"]) if isinstance(self.who, dict) and self.who.get("user") else None

    def to_record(self) -> dict[str, Any]:
        """The JSONL row (``type``, ``time``, ``message``, ``who``, ``node``, then the kind's own fields)."""
        row: dict[str, Any] = {"type": self.kind, "time": self.time, "message": self.message}
        if self.who is not None:
            row["who"] = self.who
        if self.node is not None:
            row["node"] = self.node
        row.update({key: value for key, value in self.data.items() if value is not None and key not in _TOP_LEVEL})
        return row

    @classmethod
    def from_record(cls, row: dict[str, Any]) -> IncidentEvent:
        who = row.get("who")
        node = row.get("node")
        return cls(
            float(row["time"]),
            str(row["type"]),
            str(row.get("message", "")),
            str(node) if node is not None else None,
            who if isinstance(who, dict) else None,
            {key: value for key, value in row.items() if key not in _TOP_LEVEL},
        )

    def to_json(self) -> dict[str, Any]:
        return {**self.to_record(), "time": iso(self.time)}


@dataclass(frozen=True)
class RecordedAnswer:
    """A triage answer as it stands (an answer taken back is gone)."""

    question: str
    answer: bool | None
    evidence: str
    overridden: bool
    at: float
    who: str | None = None


@dataclass
class RunRecord:
    """A playbook run that joined the incident, and how it ended."""

    run_id: str
    playbook: str
    started_at: float
    finished_at: float | None = None
    status: str | None = None  # succeeded | failed | refused
    partial: bool = False
    checks_passed: bool = False
    lost: list[str] = field(default_factory=list)  # the run's final accounting: not recovered, in quarantine
    ready_url: str | None = None  # the node that serves the target: resolution waits for its /ready


@dataclass
class Incident:
    id: str
    target: str
    opened_at: float
    severity: str
    title: str
    target_rto_seconds: float
    rto_basis: str
    events: list[IncidentEvent] = field(default_factory=list)
    recommended: list[str] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list)
    resolved_at: float | None = None
    resolution: str = ""  # the evidence the node serves again
    closed_at: float | None = None
    close_reason: str = ""

    @property
    def status(self) -> str:
        if self.closed_at is not None:
            return "closed"
        return "resolved" if self.resolved_at is not None else "open"

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def meaning(self) -> str:
        level = LEVELS.get(self.severity)
        return level.meaning if level is not None else ""

    def clock_seconds(self, now: float | None = None) -> float:
        """The RTO clock: it stops when the node is verified serving again (or the incident is closed)."""
        end = self.resolved_at if self.resolved_at is not None else self.closed_at
        if end is None:
            end = time.time() if now is None else now
        return max(0.0, end - self.opened_at)

    def within_target(self, now: float | None = None) -> bool:
        return self.clock_seconds(now) <= self.target_rto_seconds

    @property
    def last_run(self) -> RunRecord | None:
        return self.runs[-1] if self.runs else None

    @property
    def awaiting_verification(self) -> bool:
        """Open, and its last run ended with every check passed: it resolves once the node serves again."""
        run = self.last_run
        return self.is_open and run is not None and run.finished_at is not None and run.checks_passed

    @property
    def ready_url(self) -> str | None:
        run = self.last_run
        return run.ready_url if run is not None else None

    def lost(self) -> list[str]:
        """What the runs' own final accounting says could not be recovered (each run's, labelled)."""
        return [f"{item} (run {run.run_id}, {run.playbook})" for run in self.runs for item in run.lost]

    def answers(self) -> list[RecordedAnswer]:
        """The triage answers as they stand: an undo takes back the newest answer to its question."""
        found: list[RecordedAnswer] = []
        for event in self.events:
            if event.kind in ("answer", "override"):
                answer = event.data.get("answer")
                found.append(
                    RecordedAnswer(
                        str(event.data.get("question", "")),
                        answer if isinstance(answer, bool) else None,
                        str(event.data.get("evidence", "")),
                        event.kind == "override",
                        event.time,
                        event.user,
                    )
                )
            elif event.kind == "answer_undone":
                question = event.data.get("question")
                for index in range(len(found) - 1, -1, -1):
                    if found[index].question == question:
                        del found[index]
                        break
        return found

    # ------------------------------------------------------------------ JSON
    def summary_json(self, now: float | None = None) -> dict[str, Any]:
        clock = self.clock_seconds(now)
        return {
            "id": self.id,
            "target": self.target,
            "status": self.status,
            "severity": self.severity,
            "title": self.title,
            "opened_at": iso(self.opened_at),
            "resolved_at": None if self.resolved_at is None else iso(self.resolved_at),
            "closed_at": None if self.closed_at is None else iso(self.closed_at),
            "rto_seconds": round(clock, 1),
            "duration_seconds": round(clock, 1),
            "target_rto_seconds": self.target_rto_seconds,
            "rto_basis": self.rto_basis,
            "within_target": clock <= self.target_rto_seconds,
            "awaiting_verification": self.awaiting_verification,
            "events": len(self.events),
        }

    def to_json(self, now: float | None = None) -> dict[str, Any]:
        return {
            **self.summary_json(now),
            "recommended": self.recommended,
            "resolution": self.resolution or None,
            "close_reason": self.close_reason or None,
            "lost": self.lost(),
            "runs": [
                {
                    "run_id": run.run_id,
                    "playbook": run.playbook,
                    "status": run.status,
                    "partial": run.partial,
                    "checks_passed": run.checks_passed,
                    "lost": run.lost,
                }
                for run in self.runs
            ],
            "timeline": [event.to_json() for event in self.events],
        }


def rto_target(severity: str, recommended: Sequence[str], targets: dict[str, float]) -> tuple[float, str]:
    """The target RTO: the first recommended playbook's (``targets``: playbook id -> seconds), else the
    severity's response time (the reference guides' table)."""
    for playbook in recommended:
        if playbook in targets:
            return float(targets[playbook]), f"playbook {playbook}"
    level = LEVELS.get(severity) or LEVELS["P3"]
    return float(level.response_seconds), f"{level.name} response time"


def fold(rows: Iterable[dict[str, Any]]) -> Incident:
    """The incident its rows describe (the first row must be ``opened``); raises ValueError otherwise."""
    events = sorted((IncidentEvent.from_record(row) for row in rows), key=lambda event: event.time)
    head = next((event for event in events if event.kind == "opened"), None)
    if head is None:
        raise ValueError("no 'opened' row: not an incident")
    data = head.data
    severity = str(data.get("severity", "P3"))
    recommended = [str(item) for item in data.get("recommended") or []]
    if "target_rto_seconds" in data:
        target, basis = float(data["target_rto_seconds"]), str(data.get("rto_basis", ""))
    else:  # written before targets were recorded
        target, basis = rto_target(severity, (), {})
    incident = Incident(
        str(data["id"]),
        str(data["target"]),
        head.time,
        severity,
        str(data.get("title", "")),
        target,
        basis,
        events,
        recommended,
    )
    runs: dict[str, RunRecord] = {}
    for event in events:
        _apply(incident, runs, event)
    incident.runs = sorted(runs.values(), key=lambda run: run.started_at)
    return incident


def _apply(incident: Incident, runs: dict[str, RunRecord], event: IncidentEvent) -> None:
    data = event.data
    if event.kind == "severity" and rank(str(data.get("severity"))) < rank(incident.severity):
        incident.severity = str(data["severity"])
    elif event.kind == "triage" and data.get("recommended") and not incident.recommended:
        incident.recommended = [str(item) for item in data["recommended"]]
    elif event.kind == "run_started" and data.get("run_id"):
        run_id = str(data["run_id"])
        runs.setdefault(run_id, RunRecord(run_id, str(data.get("playbook", "")), event.time))
    elif event.kind == "run_finished" and data.get("run_id"):
        run_id = str(data["run_id"])
        run = runs.setdefault(run_id, RunRecord(run_id, str(data.get("playbook", "")), event.time))
        run.finished_at = event.time
        run.status = str(data.get("status", ""))
        run.partial = bool(data.get("partial"))
        run.checks_passed = bool(data.get("checks_passed"))
        run.lost = [str(item) for item in data.get("lost") or []]
        run.ready_url = data.get("ready_url") or None
    elif event.kind == "verified" and incident.resolved_at is None and incident.closed_at is None:
        incident.resolved_at = event.time
        incident.resolution = event.message
    elif event.kind == "closed" and incident.closed_at is None:
        incident.closed_at = event.time
        incident.close_reason = str(data.get("reason", event.message))
    elif event.kind == "reopened":
        incident.closed_at = None
