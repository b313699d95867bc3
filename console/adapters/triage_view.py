"""What the Triage screen needs from a decision tree: ``TriageView``, and ``StaticTriage`` over data.

The decision tree itself (tree.toml, probes) belongs to ``playbooks``; the screen only renders a
``TriageView`` and forwards the responder's answers to it (``console.adapters.triage_adapter.PlaybookTriage``
is the console's, over the playbooks' tree). ``StaticTriage`` implements the view over a tree given
as data and probe answers computed beforehand, for the screen's own tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = [
    "ProbeAnswer",
    "PathStep",
    "Recommendation",
    "TreeNode",
    "TriageView",
    "TriageWalk",
    "StaticTriage",
    "UNPROBED",
]


@dataclass(frozen=True)
class ProbeAnswer:
    """A probe's answer with its evidence; ``answer`` None: the probe cannot tell, ask the responder."""

    answer: bool | None
    evidence: str


# What an answer given before its probe finished records as the evidence.
UNPROBED = ProbeAnswer(None, "answered before the probe finished")


@dataclass(frozen=True)
class Recommendation:
    playbook_id: str
    title: str
    severity: str = "P1"
    destructive: bool = False
    target_rto_seconds: float | None = None


@dataclass(frozen=True)
class TreeNode:
    """A question (``question`` set, ``yes``/``no`` name the next nodes) or a leaf (``recommend``)."""

    id: str
    question: str | None = None
    probe: str | None = None
    yes: str | None = None
    no: str | None = None
    conclusion: str | None = None  # a leaf's text: "Execute data recovery"
    recommend: tuple[str, ...] = ()
    severity: str | None = None  # a leaf's: the diagnosis' severity (None: healthy, or not known here)

    @property
    def is_leaf(self) -> bool:
        return self.question is None


@dataclass(frozen=True)
class PathStep:
    node_id: str
    question: str
    answer: bool
    probe: ProbeAnswer
    overridden: bool  # the responder answered against the probe


@runtime_checkable
class TriageView(Protocol):
    """A walk through a decision tree for one node."""

    node_name: str
    root: str

    def nodes(self) -> Mapping[str, TreeNode]: ...

    def current(self) -> TreeNode:
        """The question being asked, or the leaf reached."""
        ...

    def probe(self, node_id: str) -> ProbeAnswer:
        """The probe's answer, running the probe if needed: may block (run it in a worker thread)."""
        ...

    def probed(self, node_id: str) -> ProbeAnswer | None:
        """The probe's answer if it is known without running anything; None while it has to run."""
        ...

    def path(self) -> Sequence[PathStep]: ...

    def answer(self, answer: bool, probe: ProbeAnswer | None = None) -> PathStep:
        """Answer the current question (an override when it differs from the probe's answer).

        ``probe``: what the probe said, when the caller has it; else the known answer, never a new
        probe run (an answer given before the probe finished records that).
        """
        ...

    def undo(self) -> PathStep | None: ...

    def recommended(self) -> Sequence[Recommendation]:
        """The playbooks the leaf reached recommends (empty before a leaf)."""
        ...


class TriageWalk:
    """The answer path of a ``TriageView``, shared by every implementation.

    Needs ``steps``, ``current()`` and ``probe(node_id)`` from the class it is mixed into.
    """

    steps: list[PathStep]

    def current(self) -> TreeNode:
        raise NotImplementedError

    def probe(self, node_id: str) -> ProbeAnswer:
        raise NotImplementedError

    def probed(self, node_id: str) -> ProbeAnswer | None:
        raise NotImplementedError

    def path(self) -> Sequence[PathStep]:
        return tuple(self.steps)

    def answer(self, answer: bool, probe: ProbeAnswer | None = None) -> PathStep:
        node = self.current()
        if node.is_leaf or node.question is None:
            raise ValueError("the walk has reached a leaf: nothing left to answer")
        probe = probe or self.probed(node.id) or UNPROBED
        step = PathStep(
            node_id=node.id,
            question=node.question,
            answer=answer,
            probe=probe,
            overridden=probe.answer is not None and probe.answer != answer,
        )
        self.steps.append(step)
        return step

    def undo(self) -> PathStep | None:
        return self.steps.pop() if self.steps else None


@dataclass
class StaticTriage(TriageWalk):
    """A ``TriageView`` over a tree and probe answers given as data."""

    node_name: str
    root: str
    tree: Mapping[str, TreeNode]
    answers: Mapping[str, ProbeAnswer]
    catalogue: Mapping[str, Recommendation] = field(default_factory=dict)
    steps: list[PathStep] = field(default_factory=list)

    def __post_init__(self) -> None:
        for node in self.tree.values():
            for target in (node.yes, node.no):
                if target is not None and target not in self.tree:
                    raise ValueError(f"tree node {node.id!r} points at {target!r}, which is not in the tree")
        if self.root not in self.tree:
            raise ValueError(f"root {self.root!r} is not in the tree")

    def nodes(self) -> Mapping[str, TreeNode]:
        return self.tree

    def current(self) -> TreeNode:
        node = self.tree[self.root]
        for step in self.steps:
            next_id = node.yes if step.answer else node.no
            if next_id is None:
                break
            node = self.tree[next_id]
        return node

    def probe(self, node_id: str) -> ProbeAnswer:
        return self.answers.get(node_id, ProbeAnswer(None, "no probe for this question: answer from what you know"))

    def probed(self, node_id: str) -> ProbeAnswer | None:
        return self.probe(node_id)  # answers given as data: known at once

    def recommended(self) -> Sequence[Recommendation]:
        node = self.current()
        if not node.is_leaf:
            return ()
        return tuple(self.catalogue.get(playbook, Recommendation(playbook, playbook)) for playbook in node.recommend)
