"""How a triage meets the incident: a diagnosis with a fault opens (or joins) one; a healthy one opens none.

    record = TriageRecord(store, "orders-a")             # one walk of the tree on one target
    record.answered(question=..., answer=True, evidence=..., probe_answer=True)
    record.concluded(severity="P0", summary="Data corruption", recommended=["data-recovery"], targets=targets)

The console records each answer as the responder gives it; ``record_triage`` records a whole walk
(``drconsole triage``). While no incident is open, answers (and undos) wait in the record. A walk
that ends on a fault opens the target's incident with the diagnosis' severity (or joins the open
one, raising its severity if this one is worse) and writes them with the times they were given.
One that ends healthy opens nothing; its answers keep waiting (an undo from the healthy leaf may
still lead to a fault), and it is only noted on the target's open incident, if there is one (that
does not resolve it: resolving takes a run whose checks passed and the node serving again). While
an incident is open, answers go to it at once. Overrides (and, from the console, every answer) go
to the audit log when given, incident or not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from playbooks.incident_model import Incident, IncidentEvent, rto_target
from playbooks.incident_store import IncidentStore, answer_word, node_of
from playbooks.state import Actor, StateDir, current_actor

__all__ = ["TriageRecord", "record_triage", "playbook_targets"]


def playbook_targets(library: Any) -> dict[str, float]:
    """Playbook id -> target RTO in seconds, from a ``playbooks.loader.Library``."""
    return {key: float(playbook.target_rto_seconds) for key, playbook in library.playbooks.items()}


@dataclass(frozen=True)
class _Pending:
    question: str
    answer: bool | None
    evidence: str
    probe_answer: bool | None
    question_id: str | None
    at: float
    undo: bool = False  # the responder took back the answer to ``question``


class TriageRecord:
    """One walk of the decision tree on ``target``, recorded by the rules above."""

    def __init__(
        self, store: IncidentStore, target: str, *, actor: Actor | None = None, audit_answers: bool = True
    ) -> None:
        self.store = store
        self.target = target
        self.actor = actor or current_actor()
        self.audit_answers = audit_answers
        self.pending: list[_Pending] = []

    def _open(self) -> Incident | None:
        return self.store.open_for(self.target)

    def answered(
        self,
        *,
        question: str,
        answer: bool | None,
        evidence: str,
        probe_answer: bool | None,
        question_id: str | None = None,
        at: float | None = None,
    ) -> str | None:
        """An answer; the id of the incident it was written to, or None while the walk has found nothing."""
        moment = self.store.clock() if at is None else at
        overridden = probe_answer is not None and answer is not None and probe_answer != answer
        incident = self._open()
        if overridden or self.audit_answers:
            kind = "override" if overridden else "answer"
            said = f"; the probe said {answer_word(probe_answer)}" if overridden else ""
            self.store.audit(
                f"triage.{kind}",
                self.target,
                f"{question} {answer_word(answer)}: {evidence}{said}",
                actor=self.actor,
                incident=incident.id if incident else None,
                question=question,
                answer=answer_word(answer),
                evidence=evidence,
            )
        entry = _Pending(question, answer, evidence, probe_answer, question_id, moment)
        if incident is None:
            self.pending.append(entry)
            return None
        self._write(incident.id, entry)
        return incident.id

    def undone(self, question: str, *, at: float | None = None) -> str | None:
        """The responder took back the answer to ``question``."""
        incident = self._open()
        message = f"answer to {question} taken back (by {self.actor.describe()})"
        if self.audit_answers:
            self.store.audit(
                "triage.undo",
                self.target,
                message,
                actor=self.actor,
                incident=incident.id if incident else None,
                question=question,
            )
        if incident is None:  # kept with the answers: the incident's story shows what was taken back
            moment = self.store.clock() if at is None else at
            self.pending.append(_Pending(question, None, "", None, None, moment, undo=True))
            return None
        self.store.record(
            incident.id, "answer_undone", message, actor=self.actor, at=at, node=node_of(self.target), question=question
        )
        return incident.id

    def concluded(
        self,
        *,
        severity: str | None,
        summary: str,
        recommended: Sequence[str],
        targets: Mapping[str, float],
        story: Sequence[IncidentEvent] = (),
        at: float | None = None,
    ) -> Incident | None:
        """The walk reached a leaf. ``severity`` is the diagnosis' (None: no fault found).

        ``story``: events that led here (the alerts still firing on the target, from the first);
        written, with their own times, when this opens the incident.

        Returns the target's incident (opened, joined, or the open one a healthy walk was noted
        on), or None when the walk found nothing and no incident is open.
        """
        moment = self.store.clock() if at is None else at
        found = ", ".join(recommended) or "nothing"
        if severity is None:
            incident = self._open()  # the pending answers stay: after an undo the walk may yet find a fault
            if incident is not None:
                self.store.record(
                    incident.id,
                    "triage",
                    f"triage: {summary or 'no fault found'}; the incident stays "
                    "open until a run's checks pass and the node serves again (or it is closed)",
                    actor=self.actor,
                    at=moment,
                    node=node_of(self.target),
                    recommended=[],
                    severity=None,
                )
            return incident
        seconds, basis = rto_target(severity, recommended, dict(targets))
        incident, created = self.store.open(
            self.target,
            severity=severity,
            title=summary or f"triage of {self.target}",
            target_rto_seconds=seconds,
            rto_basis=basis,
            recommended=recommended,
            actor=self.actor,
            at=moment,
        )
        self.store.record(
            incident.id,
            "triage",
            f"triage: {summary or 'fault found'} ({severity}); recommended {found}",
            actor=self.actor,
            at=moment,
            node=node_of(self.target),
            recommended=list(recommended),
            severity=severity,
        )
        if created:
            for event in story:
                self.store.record(
                    incident.id,
                    event.kind,
                    event.message,
                    actor=self.actor,
                    at=event.time,
                    node=event.node,
                    **event.data,
                )
        for entry in self.pending:
            self._write(incident.id, entry)
        self.pending.clear()
        return self.store.load(incident.id)

    def _write(self, incident_id: str, entry: _Pending) -> None:
        if entry.undo:
            self.store.record(
                incident_id,
                "answer_undone",
                f"answer to {entry.question} taken back (by {self.actor.describe()})",
                actor=self.actor,
                at=entry.at,
                node=node_of(self.target),
                question=entry.question,
            )
            return
        self.store.record_answer(
            incident_id,
            target=self.target,
            question=entry.question,
            answer=entry.answer,
            evidence=entry.evidence,
            probe_answer=entry.probe_answer,
            node=entry.question_id,
            at=entry.at,
            actor=self.actor,
        )


def record_triage(
    result: Any, *, state: StateDir | None = None, actor: Actor | None = None, library: Any | None = None
) -> Any:
    """Record a whole ``playbooks.triage.TriageResult`` (``drconsole triage``); sets ``result.incident``.

    The diagnosis has a fault when it recommends something; its severity is the result's.
    """
    store = IncidentStore(state)
    record = TriageRecord(store, result.target, actor=actor, audit_answers=False)
    for entry in result.path:
        record.answered(
            question=entry.question,
            answer=entry.answer,
            evidence=entry.evidence,
            probe_answer=entry.probe_answer if entry.overridden else entry.answer,
            question_id=entry.node,
        )
    if library is None and result.recommended:
        from playbooks.loader import Library

        library = Library.load()
    fault = bool(result.recommended) and result.severity is not None
    incident = record.concluded(
        severity=result.severity if fault else None,
        summary=result.summary,
        recommended=result.recommended,
        targets=playbook_targets(library) if library is not None else {},
    )
    result.incident = incident.id if incident is not None else None
    return result
