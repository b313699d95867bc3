"""The incident the responder is working: severity, RTO clock, and the timeline of what happened.

The console keeps it in memory and renders it (Timeline screen, report export). Alerts enter the
timeline when they start and when they clear (``AlertTracker`` compares successive snapshots).
Severity follows the Orbit guide's table; the RTO target is the recommended playbook's when one
is chosen, else the guide's response time for the severity.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime

from console.triage_view import PathStep
from playbooks.fleet import Alert, AlertSeverity, FleetSnapshot
from playbooks.incidents import IncidentStore
from playbooks.state import StateDir, current_actor

__all__ = ["AlertTracker", "AnswerRecorder", "Incident", "SEVERITY_TARGETS", "TimelineEvent", "severity_for"]

# The Orbit guide's severity levels and their response times.
SEVERITY_TARGETS = {"P0": 15 * 60, "P1": 60 * 60, "P2": 4 * 3600, "P3": 24 * 3600}
SEVERITY_MEANING = {"P0": "complete service outage", "P1": "partial service degradation",
                    "P2": "performance issues", "P3": "minor issues"}


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime
    kind: str  # "alert", "alert-cleared", "incident", "triage", "override", "playbook", "step", "run", "note", "export"
    text: str
    node: str | None = None


def severity_for(snapshot: FleetSnapshot | None) -> str:
    """P0 when a node is down or split-brained, P1 on another critical alert, P2 on a warning, else P3."""
    if snapshot is None:
        return "P3"
    alerts = snapshot.alerts
    if any(alert.rule in ("node-down", "split-brain") for alert in alerts):
        return "P0"
    if any(alert.severity == AlertSeverity.CRITICAL for alert in alerts):
        return "P1"
    if alerts:
        return "P2"
    return "P3"


@dataclass
class Incident:
    id: str
    opened_at: datetime
    severity: str
    target_rto_seconds: float
    node: str | None = None
    resolved_at: datetime | None = None
    events: list[TimelineEvent] = field(default_factory=list)
    triage_path: list[tuple[str, bool, str, bool]] = field(default_factory=list)  # question, answer, evidence, overridden
    recommended: list[str] = field(default_factory=list)
    playbook: str | None = None
    outcome: str | None = None
    recorded_as: str | None = None  # the playbooks' incident (state dir) the answers were written to
    responder: str | None = None  # who answered the triage (login user, and where from over SSH)

    @classmethod
    def open(cls, at: datetime, severity: str, node: str | None = None) -> Incident:
        return cls(id=f"INC-{at:%Y%m%d-%H%M%S}", opened_at=at, severity=severity,
                   target_rto_seconds=SEVERITY_TARGETS[severity], node=node)

    def elapsed_seconds(self, now: datetime) -> float:
        end = self.resolved_at or now
        return max(0.0, (end - self.opened_at).total_seconds())

    def within_target(self, now: datetime) -> bool:
        return self.elapsed_seconds(now) <= self.target_rto_seconds


class AlertTracker:
    """Turns successive snapshots into "alert raised" / "alert cleared" timeline events."""

    def __init__(self) -> None:
        self.active: dict[tuple[str, str], Alert] = {}
        self.raised_at: dict[tuple[str, str], datetime] = {}

    def update(self, snapshot: FleetSnapshot) -> list[TimelineEvent]:
        current = {alert.key: alert for alert in snapshot.alerts}
        events = [TimelineEvent(snapshot.taken_at, "alert", f"{alert.severity.value}: {alert.message}", alert.node)
                  for key, alert in current.items() if key not in self.active]
        events += [TimelineEvent(snapshot.taken_at, "alert-cleared", f"cleared: {alert.message}", alert.node)
                   for key, alert in self.active.items() if key not in current]
        for key in current:
            self.raised_at.setdefault(key, snapshot.taken_at)
        for key in [key for key in self.raised_at if key not in current]:
            del self.raised_at[key]
        self.active = current
        return events

    def first_active_at(self) -> datetime | None:
        """When the oldest alert still firing was raised: where an incident's story begins."""
        return min(self.raised_at.values()) if self.raised_at else None


class AnswerRecorder:
    """Writes each triage answer, override and undo to the playbooks' incident and audit log.

    The writes (a lock, an fsync, a scan of the open incidents) run on one background thread, so
    the UI never waits for the disk and the answers land in the order they were given.
    ``on_error`` is called (from that thread) with what failed; ``on_recorded`` with the incident id.
    """

    def __init__(self, state: StateDir | None = None, *, on_error: Callable[[str], None] | None = None,
                 on_recorded: Callable[[str], None] | None = None) -> None:
        self.state = state
        self.on_error = on_error
        self.on_recorded = on_recorded
        self.actor = current_actor()  # who: the login user (and SSH_CLIENT) of this console
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drconsole-record")
        self._pending: list[Future[str | None]] = []

    def _store(self) -> IncidentStore:
        return IncidentStore(self.state or StateDir())

    def _submit(self, write: Callable[[], str | None]) -> Future[str | None]:
        def guarded() -> str | None:
            try:
                incident_id = write()
            except Exception as exc:  # noqa: BLE001 - told to the responder; the console goes on
                if self.on_error is not None:
                    self.on_error(f"{type(exc).__name__}: {exc}")
                raise
            if incident_id is not None and self.on_recorded is not None:
                self.on_recorded(incident_id)
            return incident_id

        future = self._executor.submit(guarded)
        self._pending = [pending for pending in self._pending if not pending.done()] + [future]
        return future

    def answer(self, target: str, step: PathStep, *, severity: str, title: str) -> Future[str | None]:
        return self._submit(lambda: self._store().record_answer(
            target, question=step.question, answer=step.answer, evidence=step.probe.evidence,
            probe_answer=step.probe.answer, node=step.node_id, severity=severity, title=title, actor=self.actor))

    def undo(self, target: str, step: PathStep) -> Future[str | None]:
        return self._submit(lambda: self._store().record_undo(target, step.question, actor=self.actor))

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every answer given so far is on disk (tests; the app's exit)."""
        wait(list(self._pending), timeout=timeout)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
