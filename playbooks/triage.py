"""Walking the decision tree: each question answered by its probe (or the responder), with evidence.

    result = triage(data_dir=Path("/data/orders-a"))
    result.path          # [PathEntry(question, answer, evidence, ...)]
    result.recommended   # ["data-recovery"]
    result.fault         # "data-corruption" (None: healthy, or stopped at an unknown)
    result.severity      # "P0": the fault's level in playbooks.severity (None when healthy)
    result.unknown       # the question a probe could not answer: the walk stopped there

``overrides`` maps a node id to the responder's answer; the probe still runs, and the entry keeps
both answers, so the record shows what the evidence said and what the human decided.
``record_triage`` writes the outcome to the incident timeline (opening one when a fault is found;
a healthy walk opens none) and overrides to the audit log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.errors import InvalidArgumentError
from playbooks.loader import Library
from playbooks.probes import PROBES, ProbeContext
from playbooks.state import Actor, StateDir
from playbooks.tree import DecisionTree, Leaf

__all__ = ["PathEntry", "TriageResult", "triage", "walk", "record_triage", "answer_word"]


def answer_word(answer: bool | None) -> str:
    return "yes" if answer is True else "no" if answer is False else "unknown"


@dataclass
class PathEntry:
    node: str
    question: str
    probe: str
    answer: bool | None
    evidence: str
    overridden: bool = False
    probe_answer: bool | None = None
    subject: str | None = None  # the node the answer is about, when another than the target
    lines: list[str] = field(default_factory=list)  # the log lines the evidence rests on

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "question": self.question,
            "answer": answer_word(self.answer),
            "evidence": self.evidence,
            "node": self.node,
            "probe": self.probe,
        }
        if self.subject:
            row["subject"] = self.subject
        if self.lines:
            row["lines"] = self.lines
        if self.overridden:
            row["overridden"] = True
            row["probe_answer"] = answer_word(self.probe_answer)
        return row


@dataclass
class TriageResult:
    """Where the walk ended: a leaf (``fault`` and its ``severity``, or healthy), or a question it could not answer.

    ``unknown`` is that question's entry: the walk stopped there, nothing is recommended, and the
    responder answers it (``--override NODE=yes|no``, or the console's y/n). ``run_on`` is the node
    the recommended playbooks are for (the target, or the down primary / hung member a question found).
    """

    path: list[PathEntry]
    recommended: list[str]
    severity: str | None
    summary: str = ""
    pending: dict[str, str] = field(default_factory=dict)  # recommended playbooks not runnable yet, and why
    incident: str | None = None
    target: str = ""
    fault: str | None = None
    unknown: PathEntry | None = None
    run_on: str | None = None

    @property
    def healthy(self) -> bool:
        """No fault found, and every question answered."""
        return self.fault is None and self.unknown is None and not self.recommended

    def to_json(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "path": [entry.to_json() for entry in self.path],
            "recommended": self.recommended,
            "severity": self.severity,
            "fault": self.fault,
            "summary": self.summary,
            "target": self.target,
            "run_on": self.run_on,
            "unknown": None
            if self.unknown is None
            else {"node": self.unknown.node, "question": self.unknown.question, "evidence": self.unknown.evidence},
        }
        if self.pending:
            payload["pending"] = self.pending
        if self.incident:
            payload["incident"] = self.incident
        return payload


def walk(tree: DecisionTree, context: ProbeContext, overrides: dict[str, bool] | None = None) -> TriageResult:
    """Answer each question from its probe (or the responder's override) down to a leaf, or to an unknown."""
    overrides = dict(overrides or {})
    missing = sorted(set(overrides) - set(tree.nodes))
    if missing:
        raise InvalidArgumentError(
            f"no question {missing[0]!r} in the decision tree", hint=f"questions: {', '.join(sorted(tree.nodes))}"
        )
    path: list[PathEntry] = []
    node_id: str | None = tree.root
    leaf: Leaf | None = None
    while node_id is not None:
        node = tree.nodes[node_id]
        found = PROBES[node.probe](context)
        subject = found.data.get("subject")
        entry = PathEntry(
            node_id,
            node.question,
            node.probe,
            found.answer,
            found.evidence,
            subject=str(subject) if subject else None,
            lines=list(found.data.get("lines") or []),
        )
        if node_id in overrides:
            entry.overridden = True
            entry.probe_answer = found.answer
            entry.answer = overrides[node_id]
            entry.evidence = f"{found.evidence} (overridden by the responder: {answer_word(entry.answer)})"
        path.append(entry)
        if entry.answer is None:
            # Cannot tell is an answer of its own: the walk stops and the responder is asked.
            return TriageResult(path, [], None, f"cannot tell: {node.question} ({found.evidence})", unknown=entry)
        node_id, leaf = tree.resolve(tree.branch(node_id, entry.answer))
    assert leaf is not None
    pending = {playbook: tree.pending[playbook] for playbook in leaf.recommend if playbook in tree.pending}
    subject = next((entry.subject for entry in reversed(path) if entry.subject), None)
    run_on = (subject or context.node) if leaf.run_on == "subject" else context.node
    return TriageResult(
        path,
        list(leaf.recommend),
        leaf.severity,
        leaf.summary,
        pending,
        fault=leaf.fault,
        run_on=run_on if leaf.fault is not None else None,
    )


def triage(
    *,
    data_dir: Path | None = None,
    snapshot: Any | None = None,
    node: str | None = None,
    repo: Path | None = None,
    overrides: dict[str, bool] | None = None,
    library: Library | None = None,
    disk_threshold: float | None = None,
    memory_threshold: float | None = None,
    specs: Sequence[Any] = (),
    thresholds: Any | None = None,
    log_file: Path | None = None,
) -> TriageResult:
    """Walk the library's tree for one node (``node``, with its ``data_dir`` when it is on this host) or a data dir.

    ``specs``: the configured nodes (their data dirs, logs and backup repositories are evidence for
    questions about another node of the group); ``thresholds``: the config's ``[thresholds]``.
    """
    library = library if library is not None else Library.load()
    if library.tree is None:
        raise InvalidArgumentError("the playbook library has no tree.toml")
    context = probe_context(
        data_dir=data_dir,
        snapshot=snapshot,
        node=node,
        repo=repo,
        specs=specs,
        thresholds=thresholds,
        disk_threshold=disk_threshold,
        memory_threshold=memory_threshold,
        log_file=log_file,
    )
    result = walk(library.tree, context, overrides)
    for playbook in result.recommended:
        if playbook in library.playbooks:
            result.pending.pop(playbook, None)
    result.target = node or (str(context.data_dir) if context.data_dir else "fleet")
    return result


def probe_context(
    *,
    data_dir: Path | None = None,
    snapshot: Any | None = None,
    node: str | None = None,
    repo: Path | None = None,
    specs: Sequence[Any] = (),
    thresholds: Any | None = None,
    disk_threshold: float | None = None,
    memory_threshold: float | None = None,
    log_file: Path | None = None,
) -> ProbeContext:
    """The probes' context, the same for the CLI and the console: thresholds from the config where given."""
    context = ProbeContext(
        data_dir=Path(data_dir).absolute() if data_dir else None,
        snapshot=snapshot,
        node=node,
        repo=Path(repo) if repo else None,
        specs=tuple(specs),
        log_file=Path(log_file) if log_file else None,
    )
    if thresholds is not None:
        context.disk_threshold = thresholds.disk_usage
        context.memory_threshold = thresholds.memory_usage
        for name in ("backup_max_age_seconds", "archive_lag_seconds"):
            value = getattr(thresholds, name, None)
            if value is not None:
                setattr(context, name, float(value))
        if getattr(thresholds, "replication_lag_seconds", None) is not None:
            context.lag_threshold_seconds = float(thresholds.replication_lag_seconds)
    if disk_threshold is not None:
        context.disk_threshold = disk_threshold
    if memory_threshold is not None:
        context.memory_threshold = memory_threshold
    return context


def record_triage(result: TriageResult, *, state: StateDir | None = None, actor: Actor | None = None) -> TriageResult:
    """Put the triage on the target's incident (``playbooks.incident_triage``: a fault opens or joins
    one, a healthy walk opens none) and overrides in the audit log; returns ``result``."""
    from playbooks.incident_triage import record_triage as record

    return record(result, state=state, actor=actor)  # type: ignore[no-any-return]
