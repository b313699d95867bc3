"""Where incidents live: one JSONL file per incident in ``<state-dir>/incidents/``, appended and fsynced.

    store = IncidentStore()
    incident, created = store.open("orders-a", severity="P0", title="Data corruption", ...)
    store.record(incident.id, "note", "paged the SRE lead")
    store.record_verified("orders-a", at=t, evidence="GET http://…/ready 200")   # resolves; the RTO clock stops at t
    store.close(incident.id, "false alarm")

One open incident per target (a node name, or a data dir's absolute path): ``open`` joins it when
there is one (raising its severity if the new diagnosis is worse), so a triage, a run and the
checks after it share one timeline. Opening takes a lock on the folder; appends are whole lines
with ``O_APPEND`` and fsync, so the console, the CLI and a runner thread can write at once.
When a webhook is configured (``webhook=``, else ``$DRCONSOLE_WEBHOOK_URL``) the opening, a raised
severity, the resolution and a close are sent to it (best effort, never failing the caller).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engines.errors import map_os_error
from playbooks.audit import AuditLog
from playbooks.errors import UnknownPlaybookError
from playbooks.incident_model import Incident, IncidentEvent, fold
from playbooks.notify import incident_message, send_webhook
from playbooks.severity import rank
from playbooks.state import Actor, StateDir, current_actor

__all__ = ["IncidentStore", "answer_word"]

Incidents = list[Incident]  # ``IncidentStore.list`` hides the builtin inside the class


def answer_word(answer: bool | None) -> str:
    return "yes" if answer is True else "no" if answer is False else "unknown"


def node_of(target: str) -> str | None:
    """The node column of a target's own events: its name (a data dir's path is not a node)."""
    return None if target.startswith("/") else target


class IncidentStore:
    """The incidents of one state dir. ``clock`` gives epoch seconds (the console passes its own)."""

    def __init__(
        self, state: StateDir | None = None, *, clock: Callable[[], float] | None = None, webhook: str | None = None
    ) -> None:
        self.state = state or StateDir()
        # Looked up at each call (not bound at import), so one patched ``time`` freezes every store.
        self.clock: Callable[[], float] = clock or (lambda: time.time())
        self.webhook = webhook if webhook is not None else os.environ.get("DRCONSOLE_WEBHOOK_URL") or None
        self._cache: dict[Path, tuple[int, int, Incident]] = {}

    @property
    def folder(self) -> Path:
        return self.state.incidents

    def path(self, incident_id: str) -> Path:
        return self.folder / f"{incident_id}.jsonl"

    # ------------------------------------------------------------------ reading
    def load(self, incident_id: str) -> Incident:
        path = self.path(incident_id)
        if not path.is_file():
            known = ", ".join(incident.id for incident in self.list()[-5:]) or "none yet"
            raise UnknownPlaybookError(f"no incident {incident_id!r}", hint=f"recent incidents: {known}")
        return self._parse(path)

    def list(self) -> Incidents:
        """Every incident, oldest first (a file that is not an incident is passed over)."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in sorted(self.folder.glob("INC-*.jsonl")):
            try:
                found.append(self._parse(path))
            except (ValueError, KeyError, OSError):
                continue
        return found

    def open_incidents(self) -> Incidents:
        return [incident for incident in self.list() if incident.is_open]

    def open_for(self, target: str) -> Incident | None:
        """The open incident on ``target``, if there is one."""
        for incident in reversed(self.list()):
            if incident.target == target and incident.is_open:
                return incident
        return None

    def _parse(self, path: Path) -> Incident:
        """The incident in ``path``; unchanged files (size and mtime) are not read again."""
        stat = path.stat()
        cached = self._cache.get(path)
        if cached is not None and cached[:2] == (stat.st_size, stat.st_mtime_ns):
            return cached[2]
        rows = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line (a crash mid-append) loses only that line
        incident = fold(rows)
        self._cache[path] = (stat.st_size, stat.st_mtime_ns, incident)
        return incident

    # ------------------------------------------------------------------ writing
    def _append(self, incident_id: str, row: dict[str, Any]) -> None:
        path = self.path(incident_id)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, (json.dumps(row, ensure_ascii=False, default=str) + "\n").encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise map_os_error(exc, f"writing incident {path}") from exc

    def _new_id(self, now: float) -> str:
        day = time.strftime("%Y%m%d", time.gmtime(now))
        for number in range(1, 10000):
            candidate = f"INC-{day}-{number:03d}"
            try:
                fd = os.open(self.path(candidate), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            except FileExistsError:
                continue
            os.close(fd)
            return candidate
        raise RuntimeError("too many incidents today")

    def record(
        self,
        incident_id: str,
        kind: str,
        message: str,
        *,
        actor: Actor | None = None,
        at: float | None = None,
        node: str | None = None,
        **data: Any,
    ) -> IncidentEvent:
        """Append one event (``at``: when it happened, default now)."""
        actor = actor or current_actor()
        event = IncidentEvent(self.clock() if at is None else at, kind, message, node, actor.to_json(), data)
        self._append(incident_id, event.to_record())
        return event

    def open(
        self,
        target: str,
        *,
        severity: str,
        title: str,
        target_rto_seconds: float,
        rto_basis: str,
        recommended: Sequence[str] = (),
        actor: Actor | None = None,
        at: float | None = None,
    ) -> tuple[Incident, bool]:
        """The open incident on ``target`` (its severity raised if ``severity`` is worse), or a new one.

        Returns the incident and whether it was created now.
        """
        actor = actor or current_actor()
        self.folder.mkdir(parents=True, exist_ok=True)
        created: str | None = None
        with open(self.folder / ".lock", "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            existing = self.open_for(target)
            if existing is None:
                now = self.clock() if at is None else at
                created = self._new_id(now)
                self.record(
                    created,
                    "opened",
                    f"incident opened as {severity}: {title}",
                    actor=actor,
                    at=now,
                    node=node_of(target),
                    id=created,
                    target=target,
                    severity=severity,
                    title=title,
                    target_rto_seconds=target_rto_seconds,
                    rto_basis=rto_basis,
                    recommended=list(recommended),
                )
        if existing is None:
            assert created is not None
            incident = self.load(created)
            self._notify(incident, "opened")  # outside the lock: a slow webhook holds up nobody else
            return incident, True
        if rank(severity) < rank(existing.severity):
            self.record(
                existing.id,
                "severity",
                f"severity raised {existing.severity} -> {severity}: {title}",
                actor=actor,
                at=at,
                node=node_of(target),
                severity=severity,
            )
            existing = self.load(existing.id)
            self._notify(existing, "severity")
        return existing, False

    def record_answer(
        self,
        incident_id: str,
        *,
        target: str,
        question: str,
        answer: bool | None,
        evidence: str,
        probe_answer: bool | None,
        node: str | None = None,
        at: float | None = None,
        actor: Actor | None = None,
    ) -> None:
        """One triage answer as the responder gave it (an answer against the probe's is an override)."""
        actor = actor or current_actor()
        overridden = probe_answer is not None and answer is not None and probe_answer != answer
        kind = "override" if overridden else "answer"
        how = (
            f"override: the probe said {answer_word(probe_answer)}"
            if overridden
            else "accepted"
            if probe_answer is not None
            else "answered: the probe could not tell"
        )
        self.record(
            incident_id,
            kind,
            f"{question} {answer_word(answer)}: {evidence} ({how}; by {actor.describe()})",
            actor=actor,
            at=at,
            node=node_of(target),
            question=question,
            answer=answer,
            evidence=evidence,
            probe_answer=probe_answer,
            question_id=node,
        )

    # ------------------------------------------------------------------ runs (the local runner, the agent path)
    def join_run(
        self,
        target: str,
        *,
        run_id: str,
        playbook: str,
        severity: str,
        title: str,
        target_rto_seconds: float,
        actor: Actor | None = None,
        at: float | None = None,
    ) -> Incident:
        """A recovery run joins the target's open incident (opened by a diagnosis), or opens one with the
        playbook's severity and target when none is open; returns the incident."""
        incident = self.open_for(target)
        if incident is None:
            incident, _created = self.open(
                target,
                severity=severity,
                title=f"{title} on {target}",
                target_rto_seconds=target_rto_seconds,
                rto_basis=f"playbook {playbook}",
                recommended=[playbook],
                actor=actor,
                at=at,
            )
        self.record(
            incident.id,
            "run_started",
            f"playbook {playbook} run {run_id} started",
            actor=actor,
            at=at,
            node=node_of(target),
            run_id=run_id,
            playbook=playbook,
        )
        return self.load(incident.id)

    def record_run_finished(
        self,
        incident_id: str,
        target: str,
        *,
        run_id: str,
        playbook: str,
        status: str,
        partial: bool,
        message: str = "",
        lost: Sequence[str] = (),
        recovered: Sequence[str] = (),
        ready_url: str | None = None,
        actor: Actor | None = None,
        at: float | None = None,
    ) -> Incident:
        """How the run ended. Its checks passed when it succeeded with nothing passed over; ``lost`` is its
        final accounting (playbooks.accounting); ``ready_url``: the node that serves the target, whose
        ``/ready`` resolves the incident (``verify_recovery``). Nothing here resolves it."""
        checks_passed = status == "succeeded" and not partial
        self.record(
            incident_id,
            "run_finished",
            f"playbook {playbook} {status}" + (" (partially)" if partial else "") + (f": {message}" if message else ""),
            actor=actor,
            at=at,
            node=node_of(target),
            run_id=run_id,
            playbook=playbook,
            status=status,
            partial=partial,
            checks_passed=checks_passed,
            lost=list(lost),
            recovered=list(recovered),
            ready_url=ready_url,
        )
        return self.load(incident_id)

    def audit(
        self,
        action: str,
        target: str,
        detail: str,
        *,
        actor: Actor | None = None,
        incident: str | None = None,
        **extra: Any,
    ) -> None:
        """An entry in the hash-chained audit log (triage overrides and the responder's decisions)."""
        AuditLog(self.state.audit_log).append(
            actor=actor or current_actor(),
            action=action,
            target=target,
            outcome="recorded",
            detail=detail,
            incident=incident,
            **extra,
        )

    def record_verified(
        self,
        target: str,
        *,
        evidence: str,
        at: float | None = None,
        run_id: str | None = None,
        actor: Actor | None = None,
    ) -> Incident | None:
        """The target is verified serving again: its open incident resolves, and the RTO clock stops at ``at``.

        Called by the local runner (checks passed and the engine opens), by the agent path (the node
        reports it serves again) and by ``verify_recovery`` (``/ready`` answered 200 after a run).
        Returns the resolved incident, or None when no incident is open on ``target``.
        """
        incident = self.open_for(target)
        if incident is None:
            return None
        moment = self.clock() if at is None else at
        self.record(
            incident.id,
            "verified",
            f"service restored: {evidence}",
            actor=actor,
            at=moment,
            node=node_of(target),
            run_id=run_id,
            evidence=evidence,
        )
        resolved = self.load(incident.id)
        self._notify(resolved, "resolved")
        return resolved

    def close(self, incident_id: str, reason: str, *, actor: Actor | None = None, at: float | None = None) -> Incident:
        """Close by hand, with the responder's reason (also a resolved incident, for the postmortem)."""
        self.record(incident_id, "closed", f"incident closed: {reason}", actor=actor, at=at, reason=reason)
        closed = self.load(incident_id)
        self._notify(closed, "closed")
        return closed

    def _notify(self, incident: Incident, what: str) -> None:
        if self.webhook:
            send_webhook(
                self.webhook,
                incident_message(incident, what, now=self.clock()),
                extra={"incident": incident.id, "severity": incident.severity, "status": incident.status},
            )
