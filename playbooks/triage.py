"""Walking the decision tree: each question answered by its probe (or the responder), with evidence.

    result = triage(data_dir=Path("/data/orders-a"))
    result.path          # [PathEntry(question, answer, evidence, ...)]
    result.recommended   # ["data-recovery"]
    result.severity      # "P0"

``overrides`` maps a node id to the responder's answer; the probe still runs, and the entry keeps
both answers, so the record shows what the evidence said and what the human decided.
``record_triage`` writes the outcome to the incident timeline (opening one when a fault is found;
a healthy walk opens none) and overrides to the audit log.
"""

from __future__ import annotations

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

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {"question": self.question, "answer": answer_word(self.answer), "evidence": self.evidence,
                               "node": self.node, "probe": self.probe}
        if self.overridden:
            row["overridden"] = True
            row["probe_answer"] = answer_word(self.probe_answer)
        return row


@dataclass
class TriageResult:
    path: list[PathEntry]
    recommended: list[str]
    severity: str
    summary: str = ""
    pending: dict[str, str] = field(default_factory=dict)  # recommended playbooks not runnable yet, and why
    incident: str | None = None
    target: str = ""

    @property
    def healthy(self) -> bool:
        return not self.recommended

    def to_json(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"path": [entry.to_json() for entry in self.path], "recommended": self.recommended,
                                   "severity": self.severity, "summary": self.summary, "target": self.target}
        if self.pending:
            payload["pending"] = self.pending
        if self.incident:
            payload["incident"] = self.incident
        return payload


def walk(tree: DecisionTree, context: ProbeContext, overrides: dict[str, bool] | None = None) -> TriageResult:
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(tree.nodes))
    if unknown:
        raise InvalidArgumentError(f"no question {unknown[0]!r} in the decision tree",
                                   hint=f"questions: {', '.join(sorted(tree.nodes))}")
    path: list[PathEntry] = []
    node_id: str | None = tree.root
    leaf: Leaf | None = None
    while node_id is not None:
        node = tree.nodes[node_id]
        found = PROBES[node.probe](context)
        entry = PathEntry(node_id, node.question, node.probe, found.answer, found.evidence)
        if node_id in overrides:
            entry.overridden = True
            entry.probe_answer = found.answer
            entry.answer = overrides[node_id]
            entry.evidence = f"{found.evidence} (overridden by the responder: {answer_word(entry.answer)})"
        path.append(entry)
        node_id, leaf = tree.resolve(tree.branch(node_id, entry.answer))
    assert leaf is not None
    pending = {playbook: tree.pending[playbook] for playbook in leaf.recommend if playbook in tree.pending}
    return TriageResult(path, list(leaf.recommend), leaf.severity, leaf.summary, pending)


def triage(*, data_dir: Path | None = None, snapshot: Any | None = None, node: str | None = None,
           repo: Path | None = None, overrides: dict[str, bool] | None = None, library: Library | None = None,
           disk_threshold: float | None = None, memory_threshold: float | None = None) -> TriageResult:
    library = library if library is not None else Library.load()
    if library.tree is None:
        raise InvalidArgumentError("the playbook library has no tree.toml")
    context = ProbeContext(data_dir=Path(data_dir).absolute() if data_dir else None, snapshot=snapshot, node=node,
                           repo=Path(repo) if repo else None)
    if disk_threshold is not None:
        context.disk_threshold = disk_threshold
    if memory_threshold is not None:
        context.memory_threshold = memory_threshold
    result = walk(library.tree, context, overrides)
    for playbook in result.recommended:
        if playbook in library.playbooks:
            result.pending.pop(playbook, None)
    result.target = node or (str(context.data_dir) if context.data_dir else "fleet")
    return result


def record_triage(result: TriageResult, *, state: StateDir | None = None, actor: Actor | None = None) -> TriageResult:
    """Put the triage on the target's incident (``playbooks.incident_triage``: a fault opens or joins
    one, a healthy walk opens none) and overrides in the audit log; returns ``result``."""
    from playbooks.incident_triage import record_triage as record

    return record(result, state=state, actor=actor)  # type: ignore[no-any-return]
