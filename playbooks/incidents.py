"""Incidents: the timeline of one outage on one target, from first triage to service restored.

An incident is opened by a triage that recommends something, or by a recovery run, and joined by
every later triage answer, responder override, run, step and outcome on the same target until a
triage finds the target healthy again (or it is closed by hand). Each incident is a JSONL file in
``<state-dir>/incidents/``; ``report_markdown`` fills the reference guides' incident report
template (summary, timeline, root cause, resolution, lessons, action items) as far as the facts go.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.errors import map_os_error
from playbooks.audit import AuditLog
from playbooks.errors import UnknownPlaybookError
from playbooks.state import Actor, StateDir, current_actor

__all__ = ["Incident", "IncidentStore", "report_markdown"]

_SEVERITY_ORDER = {"P0": 0, "P1": 1, "P2": 2, "P3": 3}


@dataclass
class Incident:
    id: str
    target: str
    opened_at: float
    severity: str
    title: str
    events: list[dict[str, Any]] = field(default_factory=list)
    closed_at: float | None = None

    @property
    def status(self) -> str:
        return "closed" if self.closed_at is not None else "open"

    @property
    def duration_seconds(self) -> float:
        end = self.closed_at if self.closed_at is not None else time.time()
        return max(0.0, end - self.opened_at)

    def summary_json(self) -> dict[str, Any]:
        return {"id": self.id, "target": self.target, "status": self.status, "severity": self.severity,
                "title": self.title, "opened_at": _iso(self.opened_at),
                "closed_at": None if self.closed_at is None else _iso(self.closed_at),
                "duration_seconds": round(self.duration_seconds, 1), "events": len(self.events)}

    def to_json(self) -> dict[str, Any]:
        return {**self.summary_json(), "timeline": [{**event, "time": _iso(event["time"])} for event in self.events]}


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


class IncidentStore:
    def __init__(self, state: StateDir | None = None) -> None:
        self.state = state or StateDir()

    @property
    def folder(self) -> Path:
        return self.state.incidents

    def _append(self, incident_id: str, record: dict[str, Any]) -> None:
        path = self.folder / f"{incident_id}.jsonl"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise map_os_error(exc, f"writing incident {path}") from exc

    def _new_id(self) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        day = time.strftime("%Y%m%d", time.gmtime())
        for number in range(1, 10000):
            candidate = f"INC-{day}-{number:03d}"
            try:
                fd = os.open(self.folder / f"{candidate}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            except FileExistsError:
                continue
            os.close(fd)
            return candidate
        raise RuntimeError("too many incidents today")

    def open_for(self, target: str) -> Incident | None:
        """The open incident on ``target``, if there is one."""
        for incident in reversed(self.list()):
            if incident.target == target and incident.status == "open":
                return incident
        return None

    def open(self, target: str, *, severity: str, title: str, actor: Actor | None = None) -> Incident:
        """The open incident on ``target`` (raised to ``severity`` if worse), or a new one."""
        existing = self.open_for(target)
        actor = actor or current_actor()
        if existing is not None:
            if _SEVERITY_ORDER.get(severity, 9) < _SEVERITY_ORDER.get(existing.severity, 9):
                self.record(existing.id, "severity", f"severity raised {existing.severity} -> {severity}",
                            severity=severity, actor=actor)
                existing.severity = severity
            return existing
        lock_path = self.folder / ".lock"
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            existing = self.open_for(target)
            if existing is not None:
                return existing
            incident_id = self._new_id()
            now = time.time()
            self._append(incident_id, {"type": "opened", "id": incident_id, "target": target, "severity": severity,
                                       "title": title, "time": now, "who": actor.to_json(),
                                       "message": f"incident opened: {title}"})
        return Incident(incident_id, target, now, severity, title,
                        [{"type": "opened", "time": now, "message": f"incident opened: {title}"}])

    def record(self, incident_id: str, kind: str, message: str, *, actor: Actor | None = None, **data: Any) -> None:
        actor = actor or current_actor()
        self._append(incident_id, {"type": kind, "time": time.time(), "message": message, "who": actor.to_json(),
                                   **{key: value for key, value in data.items() if value is not None}})

    def record_answer(self, target: str, *, question: str, answer: bool, evidence: str, probe_answer: bool | None,
                      node: str | None = None, severity: str = "P2", title: str | None = None,
                      actor: Actor | None = None) -> str:
        """One triage answer as the responder gave it, on the target's incident (opened if there is none)
        and in the audit log; an answer against the probe's is an override. Returns the incident id.

        The console records each answer when it is given (``record_triage`` records a whole walk at once).
        """
        actor = actor or current_actor()
        incident = self.open(target, severity=severity, title=title or f"triage of {target}", actor=actor)
        overridden = probe_answer is not None and probe_answer != answer
        kind = "override" if overridden else "answer"
        how = (f"override: the probe said {_word(probe_answer)}" if overridden
               else "accepted" if probe_answer is not None else "answered: the probe could not tell")
        message = f"{question} {_word(answer)}: {evidence} ({how}; by {actor.describe()})"
        self.record(incident.id, kind, message, actor=actor, question=question, answer=answer, evidence=evidence,
                    probe_answer=probe_answer, node=node)
        AuditLog(self.state.audit_log).append(actor=actor, action=f"triage.{kind}", target=target, outcome="recorded",
                                              detail=message, incident=incident.id, question=question,
                                              answer=_word(answer), evidence=evidence)
        return incident.id

    def record_undo(self, target: str, question: str, *, actor: Actor | None = None) -> str | None:
        """The responder took back the answer to ``question``; on the open incident, if there is one."""
        actor = actor or current_actor()
        incident = self.open_for(target)
        if incident is None:
            return None
        message = f"answer to {question} taken back (by {actor.describe()})"
        self.record(incident.id, "answer_undone", message, actor=actor, question=question)
        AuditLog(self.state.audit_log).append(actor=actor, action="triage.undo", target=target, outcome="recorded",
                                              detail=message, incident=incident.id, question=question)
        return incident.id

    def close(self, incident_id: str, reason: str, *, actor: Actor | None = None) -> None:
        self.record(incident_id, "closed", f"incident closed: {reason}", actor=actor)

    def load(self, incident_id: str) -> Incident:
        path = self.folder / f"{incident_id}.jsonl"
        if not path.is_file():
            known = ", ".join(incident.id for incident in self.list()[-5:]) or "none yet"
            raise UnknownPlaybookError(f"no incident {incident_id!r}", hint=f"recent incidents: {known}")
        return _parse(path)

    def list(self) -> list[Incident]:
        if not self.folder.is_dir():
            return []
        found = []
        for path in sorted(self.folder.glob("INC-*.jsonl")):
            try:
                found.append(_parse(path))
            except (ValueError, KeyError):
                continue
        return found


def _parse(path: Path) -> Incident:
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    if not rows or rows[0].get("type") != "opened":
        raise ValueError(f"{path} is not an incident")
    head = rows[0]
    incident = Incident(head["id"], head["target"], head["time"], head["severity"], head["title"], rows)
    for row in rows[1:]:
        if row.get("type") == "severity":
            incident.severity = row.get("severity", incident.severity)
        if row.get("type") == "closed":
            incident.closed_at = row["time"]
        if row.get("type") == "reopened":
            incident.closed_at = None
    return incident


def _word(answer: bool | None) -> str:
    return "yes" if answer is True else "no" if answer is False else "unknown"


def _who(event: dict[str, Any]) -> str | None:
    who = event.get("who")
    return who.get("user") if isinstance(who, dict) else None


def _answer_line(event: dict[str, Any]) -> str:
    """An answer with its time and who gave it (a whole-walk record's message does not name who)."""
    message = str(event.get("message", ""))
    who = _who(event)
    return f"- {_clock(event['time'])} {message}" + (f" ({who})" if who and who not in message else "")


def _clock(moment: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(moment))


def report_markdown(incident: Incident) -> str:
    """The incident report template of the Orbit and Lightning guides, filled from the timeline."""
    events = incident.events
    runs = [event for event in events if event["type"] == "run_finished"]
    steps = [event for event in events if event["type"] == "step"]
    answers = [event for event in events if event["type"] in ("answer", "override", "answer_undone")]
    detected = events[0]["time"]
    first_run = next((event["time"] for event in events if event["type"] == "run_started"), None)
    identified = next((event["time"] for event in events if event["type"] == "triage"), None)
    fixed = next((event["time"] for event in reversed(runs) if event.get("status") == "succeeded"), None)
    lines = [
        f"# Incident Report: {incident.id}", "",
        "## Incident Summary",
        f"- **Date**: {time.strftime('%Y-%m-%d', time.gmtime(incident.opened_at))}",
        f"- **Duration**: {incident.duration_seconds / 60:.0f} minutes ({incident.status})",
        f"- **Severity**: {incident.severity}",
        f"- **Target**: {incident.target}",
        f"- **Affected Users**: _to be filled in_",
        f"- **Root Cause**: {_root_cause(answers) or '_to be filled in_'}",
        f"- **Data Loss**: {_data_loss(steps)}", "",
        "## Timeline (UTC)",
        f"- {_clock(detected)} - Issue detected ({incident.title})",
    ]
    if first_run is not None:
        lines.append(f"- {_clock(first_run)} - Response initiated")
    if identified is not None:
        lines.append(f"- {_clock(identified)} - Root cause identified")
    if fixed is not None:
        lines.append(f"- {_clock(fixed)} - Fix applied")
    if incident.closed_at is not None:
        lines.append(f"- {_clock(incident.closed_at)} - Service restored, incident closed")
    lines += ["", "### Every event"]
    for event in events:
        who = _who(event)
        lines.append(f"- {_clock(event['time'])} {event['type']}: {event.get('message', '')}"
                     + (f" ({who})" if who else ""))
    lines += ["", "## Root Cause Analysis", "### What Happened"]
    lines += [_answer_line(answer) for answer in answers] or ["_to be filled in_"]
    lines += ["### Why It Happened", "_to be filled in_", "### Detection",
              f"drconsole triage ({len([e for e in events if e['type'] == 'triage'])} run(s))", "### Response"]
    lines += [f"- playbook {run.get('playbook')} run {run.get('run_id')}: {run.get('status')}" for run in runs] or ["_none_"]
    lines += ["", "## Resolution", "### Immediate Actions"]
    lines += [f"- {step.get('step')}: {step.get('status')} - {step.get('message', '')}" for step in steps] or ["_none_"]
    lines += ["### Long-term Fixes", "_to be filled in_", "",
              "## Lessons Learned", "### What Went Well", "_to be filled in_", "### What Could Be Improved",
              "_to be filled in_", "### Action Items", "- [ ] Review this timeline in the postmortem",
              "- [ ] Check that backups and WAL archiving cover the recovery point", "",
              "## Prevention", "### Monitoring Improvements", "_to be filled in_", "### Process Changes",
              "_to be filled in_", "### Code Changes", "_to be filled in_", ""]
    return "\n".join(lines)


def _root_cause(answers: list[dict[str, Any]]) -> str:
    yes = [answer for answer in answers if answer.get("answer") is True]
    if not yes:
        return ""
    last = yes[-1]
    return f"{last.get('question', '')} yes: {last.get('evidence', '')}".strip()


def _data_loss(steps: list[dict[str, Any]]) -> str:
    lost = [item for step in steps for item in (step.get("lost") or [])]
    return "; ".join(lost) if lost else "none reported"
