"""The decision tree as data: question nodes answered by probes, leaves that conclude.

``tree.toml`` holds one ``[nodes.<id>]`` table per question and optional ``[leaves.<id>]`` tables;
a branch (``yes``/``no``) names a node or a leaf, or is an inline leaf (``{ fault = ..., recommend = [...] }``).

A leaf that finds something names its ``fault`` kind; its severity is that kind's level in
``playbooks.severity`` (one table for every face, so a leaf cannot carry a severity of its own). A
leaf without a fault is the healthy one: no severity, no recommendation. ``run_on = "subject"``
says the recommended playbooks are run on the node the last question was about (a down primary,
a hung standby), not necessarily the node being triaged.

A question has no default for "cannot tell": a probe that cannot tell stops the walk there, and
the responder answers it (``playbooks.triage``). Playbooks a leaf recommends that need actions
from a later issue are listed under ``[pending]`` with the reason, so the tree can name them first.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from playbooks.severity import FAULT_SEVERITY, Level, severity_of

__all__ = ["Leaf", "Question", "DecisionTree", "Branch"]


class Leaf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    recommend: list[str] = Field(default_factory=list)
    fault: str | None = None  # a kind of playbooks.severity.FAULT_SEVERITY; None: no fault found
    summary: str = ""
    run_on: Literal["target", "subject"] = "target"

    @model_validator(mode="after")
    def _fault_named(self) -> Leaf:
        if self.fault is not None and self.fault not in FAULT_SEVERITY:
            raise ValueError(f"fault {self.fault!r} has no severity; kinds: {', '.join(sorted(FAULT_SEVERITY))}")
        if self.recommend and self.fault is None:
            raise ValueError('a leaf that recommends a playbook names its fault kind (fault = "...")')
        return self

    @property
    def severity(self) -> Level | None:
        """The fault's level (playbooks.severity); None for the healthy leaf."""
        return severity_of(self.fault) if self.fault is not None else None


Branch = str | Leaf


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str = Field(min_length=1)
    probe: str
    yes: Branch
    no: Branch
    source: str = ""  # the guide the question comes from


class DecisionTree(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    root: str
    nodes: dict[str, Question] = Field(min_length=1)
    leaves: dict[str, Leaf] = Field(default_factory=dict)
    pending: dict[str, str] = Field(default_factory=dict)  # playbook id -> why it is not runnable yet

    def branch(self, node_id: str, answer: bool) -> Branch:
        node = self.nodes[node_id]
        return node.yes if answer else node.no

    def resolve(self, branch: Branch) -> tuple[str | None, Leaf | None]:
        """(next node id, None) or (None, leaf)."""
        if isinstance(branch, Leaf):
            return None, branch
        if branch in self.nodes:
            return branch, None
        return None, self.leaves[branch]
