"""The console's hands on the incidents: ``IncidentDesk`` runs the store's work off the UI thread.

The incident is the playbooks' (``playbooks.incidents``: model, store, triage record, verification);
the console only renders it. Every write and reload runs on one background thread, in order: the
UI never waits for an fsync, and answers land in the order they were given. After each job the
incidents the console shows (the open ones, and those it saw this session) are read back from the
store and handed to ``on_change`` from that thread (the app posts them as a message), so the
screen shows exactly what ``drconsole incident list`` shows. A read-only desk writes nothing.

``diagnosis(view)`` reads what a finished walk of the decision tree concluded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from console.adapters.triage_view import PathStep, TriageView
from playbooks.incident_model import Incident, IncidentEvent
from playbooks.incident_store import IncidentStore
from playbooks.incident_triage import TriageRecord
from playbooks.incident_verify import verify_recovery
from playbooks.severity import worst
from playbooks.state import current_actor

__all__ = ["Diagnosis", "IncidentDesk", "diagnosis"]

Job = Callable[[IncidentStore], object]


class Diagnosis:
    """What a walk concluded: the severity (None: no fault), the summary, the recommended playbooks."""

    def __init__(
        self, severity: str | None, summary: str, recommended: Sequence[str], targets: dict[str, float]
    ) -> None:
        self.severity = severity
        self.summary = summary
        self.recommended = list(recommended)
        self.targets = targets


def diagnosis(view: TriageView) -> Diagnosis | None:
    """The conclusion of ``view`` once its walk reached a leaf (None before).

    A leaf that recommends playbooks is a fault; its severity is the leaf's (the decision tree's
    diagnosis), else the worst of what it recommends. A leaf that recommends nothing is healthy.
    """
    leaf = view.current()
    if not leaf.is_leaf:
        return None
    recommendations = list(view.recommended())
    targets = {item.playbook_id: float(item.target_rto_seconds) for item in recommendations if item.target_rto_seconds}
    if not leaf.recommend:
        return Diagnosis(None, leaf.conclusion or "no fault found", [], targets)
    severity = leaf.severity or worst([item.severity for item in recommendations])
    return Diagnosis(severity, leaf.conclusion or "", list(leaf.recommend), targets)


class IncidentDesk:
    def __init__(
        self,
        store: IncidentStore,
        *,
        writable: bool,
        on_change: Callable[[dict[str, Incident]], object],
        on_error: Callable[[str], object],
    ) -> None:
        self.store = store
        self.writable = writable
        self.on_change = on_change
        self.on_error = on_error
        self.actor = current_actor()  # who: the login user (and SSH_CLIENT) of this console
        self.known: set[str] = set()  # incidents seen this session: still shown once resolved
        self.records: dict[str, TriageRecord] = {}
        self.verifying: set[str] = set()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drconsole-incidents")
        self._pending: list[Future[object]] = []
        self._signature: list[tuple[str, str, str, int]] | None = None

    # ------------------------------------------------------------------ the thread
    def submit(self, job: Job, *, write: bool = True) -> Future[object]:
        """Run ``job(store)`` on the desk's thread (a write on a read-only desk does nothing), then reload."""

        def run() -> object:
            result: object = None
            try:
                if self.writable or not write:
                    result = job(self.store)
            except Exception as exc:  # noqa: BLE001 - told to the responder; the console goes on
                self.on_error(f"{type(exc).__name__}: {exc}")
            self._reload()
            return result

        future = self._executor.submit(run)
        self._pending = [pending for pending in self._pending if not pending.done()] + [future]
        return future

    def _reload(self) -> None:
        try:
            shown = {incident.id: incident for incident in self.store.open_incidents()}
            for incident_id in self.known - set(shown):
                shown[incident_id] = self.store.load(incident_id)
        except Exception as exc:  # noqa: BLE001 - an unreadable state dir is shown, not raised
            self.on_error(f"reading the incidents: {type(exc).__name__}: {exc}")
            return
        self.known |= set(shown)
        signature = sorted(
            (incident.id, incident.status, incident.severity, len(incident.events)) for incident in shown.values()
        )
        if signature != self._signature:  # a tick that changed nothing repaints nothing
            self._signature = signature
            self.on_change(shown)

    def refresh(self) -> None:
        self.submit(lambda store: None, write=False)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every job submitted so far is done (tests; the app's exit)."""
        wait(list(self._pending), timeout=timeout)

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    # ------------------------------------------------------------------ the jobs
    def _record(self, node: str) -> TriageRecord:
        if node not in self.records:
            self.records[node] = TriageRecord(self.store, node, actor=self.actor)
        return self.records[node]

    def answered(self, node: str, step: PathStep, at: float) -> None:
        self.submit(
            lambda store: self._record(node).answered(
                question=step.question,
                answer=step.answer,
                evidence=step.probe.evidence,
                probe_answer=step.probe.answer,
                question_id=step.node_id,
                at=at,
            )
        )

    def undone(self, node: str, question: str, at: float) -> None:
        self.submit(lambda store: self._record(node).undone(question, at=at))

    def concluded(self, node: str, found: Diagnosis, story: Sequence[IncidentEvent], at: float) -> None:
        """The walk on ``node`` reached a leaf; ``story``: the alerts that led here (written if it opens)."""
        self.submit(
            lambda store: self._record(node).concluded(
                severity=found.severity,
                summary=found.summary,
                recommended=found.recommended,
                targets=found.targets,
                story=story,
                at=at,
            )
        )

    def record(
        self,
        incident_id: str,
        kind: str,
        message: str,
        *,
        node: str | None = None,
        at: float | None = None,
        **data: Any,
    ) -> None:
        self.submit(lambda store: store.record(incident_id, kind, message, actor=self.actor, at=at, node=node, **data))

    def record_on(self, node: str, event: IncidentEvent) -> None:
        """``event`` on the open incident of ``node``, if it has one when the desk gets to it.

        Decided on the desk's thread, after every earlier job: an answer that opened the incident a
        moment ago has opened it by then, whatever the screens have read back so far.
        """

        def job(store: IncidentStore) -> object:
            incident = store.open_for(node)
            if incident is None:
                return None
            return store.record(
                incident.id, event.kind, event.message, actor=self.actor, at=event.time, node=node, **event.data
            )

        self.submit(job)

    def verify(self, incident: Incident, url: str) -> None:
        """Ask ``url``/ready whether the node of an incident awaiting verification serves again (once at a time)."""
        if not self.writable or incident.id in self.verifying:
            return
        self.verifying.add(incident.id)

        def job(store: IncidentStore) -> object:
            try:
                return verify_recovery(store, incident.target, url=url)
            finally:
                self.verifying.discard(incident.id)

        self.submit(job)
