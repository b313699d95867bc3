"""The decision tree as data: question nodes answered by probes, leaves that recommend playbooks.

``tree.toml`` holds one ``[nodes.<id>]`` table per question and optional ``[leaves.<id>]`` tables;
a branch (``yes``/``no``) names a node or a leaf, or is an inline leaf (``{ recommend = [...] }``).
Playbooks a leaf recommends that need actions from a later issue are listed under ``[pending]``
with the reason, so that the tree can name them before they exist.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from playbooks.models import Severity

__all__ = ["Leaf", "Question", "DecisionTree", "Branch"]


class Leaf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    recommend: list[str] = Field(default_factory=list)
    severity: Severity = "P3"
    summary: str = ""


Branch = str | Leaf


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str = Field(min_length=1)
    probe: str
    yes: Branch
    no: Branch
    # Where a probe that cannot tell (no evidence) leads.
    unknown: Literal["yes", "no"] = "no"
    source: str = ""  # the guide the question comes from


class DecisionTree(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    root: str
    nodes: dict[str, Question] = Field(min_length=1)
    leaves: dict[str, Leaf] = Field(default_factory=dict)
    pending: dict[str, str] = Field(default_factory=dict)  # playbook id -> why it is not runnable yet

    def branch(self, node_id: str, answer: bool | None) -> Branch:
        node = self.nodes[node_id]
        if answer is None:
            answer = node.unknown == "yes"
        return node.yes if answer else node.no

    def resolve(self, branch: Branch) -> tuple[str | None, Leaf | None]:
        """(next node id, None) or (None, leaf)."""
        if isinstance(branch, Leaf):
            return None, branch
        if branch in self.nodes:
            return branch, None
        return None, self.leaves[branch]
