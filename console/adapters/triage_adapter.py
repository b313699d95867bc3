"""``PlaybookTriage``: a ``TriageView`` backed by the playbooks' decision tree and probes, for any node.

The tree (``playbooks/library/tree.toml``) and the probes belong to ``playbooks``; this module only
translates: tree questions and leaves become ``TreeNode``s (inline leaves get the id
``<question>:yes`` / ``<question>:no``), probe findings become ``ProbeAnswer``s, and the
responder's answers become ``overrides`` for ``playbooks.triage.walk`` wherever they differ from
the probe, so the path and the recommendation are the playbooks' own. A node with a data dir here
is looked at directly; one read over HTTP answers from the fleet snapshot (the same context as
``drconsole triage --node``, built by ``playbooks.triage.probe_context``). A probe that cannot tell
answers None: the screen then asks the responder (accepting is refused), as the CLI reports unknown.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from console.adapters.triage_view import PathStep, ProbeAnswer, Recommendation, TreeNode, TriageWalk

__all__ = ["PlaybookTriage", "recommendation_for", "NO_PROBE"]

NO_PROBE = ProbeAnswer(None, "no probe for this question: answer from what you know")


def recommendation_for(library: Any, playbook_id: str, severity: str | None = None) -> Recommendation:
    """The Run screen's view of a library playbook (or of a pending one, named but not runnable).

    ``severity``: the diagnosis's (the fault's level in playbooks.severity), which is the incident's;
    the playbook's own is only its default when triage gave none.
    """
    playbook = library.playbooks.get(playbook_id)
    if playbook is None:
        reason = library.tree.pending.get(playbook_id, "not in the playbook library") if library.tree else ""
        return Recommendation(playbook_id, f"{playbook_id} (not runnable: {reason})", severity or "P1")
    return Recommendation(
        playbook.id,
        playbook.title,
        severity or playbook.severity,
        destructive=_destructive(library, playbook),
        target_rto_seconds=float(playbook.target_rto_seconds),
    )


def _destructive(library: Any, playbook: Any, depth: int = 0) -> bool:
    """Whether a step of ``playbook`` (or of a playbook it includes) is destructive."""
    for step in playbook.steps:
        if step.destructive:
            return True
        included = library.playbooks.get(step.include) if getattr(step, "include", None) and depth < 5 else None
        if included is not None and _destructive(library, included, depth + 1):
            return True
    return False


class PlaybookTriage(TriageWalk):
    """The playbooks' tree walked for one node; probes run once, answers are the responder's."""

    def __init__(
        self,
        node_name: str,
        data_dir: Path | None = None,
        *,
        snapshot: Any | None = None,
        library: Any | None = None,
        repo: Path | None = None,
        specs: Sequence[Any] = (),
        thresholds: Any | None = None,
        disk_threshold: float | None = None,
        memory_threshold: float | None = None,
    ) -> None:
        from playbooks.loader import Library
        from playbooks.triage import probe_context

        self.node_name = node_name
        self.data_dir = Path(data_dir).absolute() if data_dir is not None else None
        self.library = library if library is not None else Library.load()
        if self.library.tree is None:
            raise ValueError("the playbook library has no tree.toml")
        self.tree = self.library.tree
        self.root = self.tree.root
        self.context = probe_context(
            data_dir=self.data_dir,
            snapshot=snapshot,
            node=node_name,
            repo=repo,
            specs=specs,
            thresholds=thresholds,
            disk_threshold=disk_threshold,
            memory_threshold=memory_threshold,
        )
        self._nodes = self._translate()
        self._probes: dict[str, ProbeAnswer] = {}
        self._subjects: dict[str, str] = {}
        self._probe_lock = threading.Lock()
        self.steps: list[PathStep] = []

    # ------------------------------------------------------------------ translation of the tree
    def _translate(self) -> dict[str, TreeNode]:
        nodes: dict[str, TreeNode] = {}
        self._leaves: dict[str, Any] = {}
        for leaf_id, leaf in self.tree.leaves.items():
            self._leaves[leaf_id] = leaf
            nodes[leaf_id] = TreeNode(
                leaf_id,
                conclusion=leaf.summary or "no fault found",
                recommend=tuple(leaf.recommend),
                severity=leaf.severity if leaf.recommend else None,
            )
        for node_id, question in self.tree.nodes.items():
            targets: dict[str, str] = {}
            for word in ("yes", "no"):
                branch = getattr(question, word)
                if isinstance(branch, str):
                    targets[word] = branch
                else:
                    leaf_id = f"{node_id}:{word}"
                    self._leaves[leaf_id] = branch
                    nodes[leaf_id] = TreeNode(
                        leaf_id,
                        conclusion=branch.summary or "no fault found",
                        recommend=tuple(branch.recommend),
                        severity=branch.severity if branch.recommend else None,
                    )
                    targets[word] = leaf_id
            nodes[node_id] = TreeNode(node_id, question.question, question.probe, yes=targets["yes"], no=targets["no"])
        return nodes

    # ------------------------------------------------------------------ TriageView
    def nodes(self) -> Mapping[str, TreeNode]:
        return self._nodes

    def current(self) -> TreeNode:
        node = self._nodes[self.root]
        for step in self.steps:
            next_id = node.yes if step.answer else node.no
            if next_id is None:
                break
            node = self._nodes[next_id]
        return node

    def probe(self, node_id: str) -> ProbeAnswer:
        """Runs the probe once (it may open and verify the engine: call it from a worker thread)."""
        from playbooks.probes import PROBES

        question = self.tree.nodes.get(node_id)
        if question is None:
            return NO_PROBE
        # One probe run per question even when the screen's worker and another caller ask at once.
        with self._probe_lock:
            if node_id not in self._probes:
                try:
                    found = PROBES[question.probe](self.context)
                    lines = "".join(f"\n  | {line}" for line in found.data.get("lines") or [])
                    self._probes[node_id] = ProbeAnswer(found.answer, found.evidence + lines)
                    if found.data.get("subject"):
                        self._subjects[node_id] = str(found.data["subject"])
                except Exception as exc:  # noqa: BLE001 - a failing probe cannot tell; the responder answers
                    self._probes[node_id] = ProbeAnswer(None, f"probe {question.probe} failed: {exc}")
            return self._probes[node_id]

    def probed(self, node_id: str) -> ProbeAnswer | None:
        if node_id not in self.tree.nodes:
            return NO_PROBE
        return self._probes.get(node_id)

    def recommended(self) -> Sequence[Recommendation]:
        node = self.current()
        if not node.is_leaf:
            return ()
        return tuple(recommendation_for(self.library, playbook, self.severity()) for playbook in node.recommend)

    def fault(self) -> str | None:
        """The fault kind of the leaf reached (None before a leaf, and at the healthy one)."""
        leaf = self._leaves.get(self.current().id)
        return leaf.fault if leaf is not None else None

    def severity(self) -> str | None:
        """The leaf's level in playbooks.severity (None before a leaf, and at the healthy one)."""
        leaf = self._leaves.get(self.current().id)
        return leaf.severity if leaf is not None else None

    def run_on(self) -> str:
        """The node the recommended playbooks run on: the one the last question found, or this one."""
        leaf = self._leaves.get(self.current().id)
        if leaf is None or leaf.run_on != "subject":
            return self.node_name
        subjects = [self._subjects[step.node_id] for step in self.steps if step.node_id in self._subjects]
        return subjects[-1] if subjects else self.node_name

    # ------------------------------------------------------------------ for the record
    def overrides(self) -> dict[str, bool]:
        """The responder's answers as ``playbooks.triage`` overrides (unknown probes answered count too)."""
        return {step.node_id: step.answer for step in self.steps if step.probe.answer != step.answer}

    def result(self) -> Any:
        """The ``playbooks.triage.TriageResult`` of the walk so far (for ``record_triage``)."""
        from playbooks.triage import walk

        result = walk(self.tree, self.context, self.overrides())
        for playbook in result.recommended:
            if playbook in self.library.playbooks:
                result.pending.pop(playbook, None)
        result.target = self.node_name
        return result
