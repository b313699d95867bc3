"""Replication groups: which nodes of a fleet replicate with each other.

A split brain, a lost primary or a partition is a fact about one group, never about a config: three
independent primaries (an lsm, a cow and a rocksdb node, each alone) are three groups of one. A
group is found, in this order of authority, from

* ``group = "..."`` in the node's ``[[node]]`` table (what the operator says);
* ``upstream = "NAME"`` in the config (a standby and the node it follows);
* what the nodes say about themselves: the upstream a standby follows (``GET /replication``), the
  standbys a primary serves, and the peers a node polls (``GET /peers``), by name or URL.

Links found once are kept by a ``GroupTracker`` for the source's life: a standby that stops
answering is still in its primary's group. A group's label is its explicit name when one member
has one, else the root of the configured upstream chain, else the alphabetically first member.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fleet.nodes import NodeSpec
from fleet.snapshot import NodeSnapshot

__all__ = ["GroupTracker", "assign_groups", "group_links", "label_groups"]


class _Union:
    def __init__(self, names: Iterable[str]) -> None:
        self.parent = {name: name for name in names}

    def find(self, name: str) -> str:
        while self.parent[name] != name:
            self.parent[name] = self.parent[self.parent[name]]
            name = self.parent[name]
        return name

    def join(self, first: str, second: str) -> None:
        if first in self.parent and second in self.parent:
            self.parent[self.find(first)] = self.find(second)


def _resolver(nodes: Sequence[NodeSnapshot], specs: Sequence[NodeSpec]) -> dict[str, str]:
    """Every way a node is referred to (name, URL, data dir) -> its name."""
    names: dict[str, str] = {}
    for spec in specs:
        names[spec.name] = spec.name
        if spec.url:
            names[spec.url.rstrip("/")] = spec.name
    for node in nodes:
        names.setdefault(node.name, node.name)
        if node.address:
            names.setdefault(node.address.rstrip("/"), node.name)
    return names


def group_links(nodes: Sequence[NodeSnapshot], specs: Sequence[NodeSpec] = ()) -> set[tuple[str, str]]:
    """Pairs of node names that replicate with each other, from the config and the nodes' own reports."""
    names = _resolver(nodes, specs)
    links: set[tuple[str, str]] = set()

    def link(name: str, other: str | None) -> None:
        target = names.get((other or "").rstrip("/"))
        if target is not None and target != name:
            links.add((min(name, target), max(name, target)))

    explicit: dict[str, list[str]] = {}
    for spec in specs:
        link(spec.name, spec.upstream)
        if spec.group:
            explicit.setdefault(spec.group, []).append(spec.name)
    for members in explicit.values():
        for member in members[1:]:
            link(members[0], member)
    for node in nodes:
        link(node.name, node.replication.upstream)
        for other in (*node.replication.standbys, *node.peers):
            link(node.name, other)
    return links


def label_groups(
    names: Sequence[str], links: Iterable[tuple[str, str]], specs: Sequence[NodeSpec] = ()
) -> dict[str, str]:
    """node name -> group label (see the module docstring for which label a group gets)."""
    union = _Union(names)
    for first, second in links:
        union.join(first, second)
    members: dict[str, list[str]] = {}
    for name in names:
        members.setdefault(union.find(name), []).append(name)
    by_name = {spec.name: spec for spec in specs}
    labels: dict[str, str] = {}
    for group in members.values():
        explicit = sorted({str(by_name[name].group) for name in group if name in by_name and by_name[name].group})
        roots = sorted(
            name
            for name in group
            if name in by_name and by_name[name].upstream is None and by_name[name].role == "primary"
        )
        label = explicit[0] if explicit else roots[0] if roots else sorted(group)[0]
        for name in group:
            labels[name] = label
    return labels


def assign_groups(
    nodes: Sequence[NodeSnapshot], specs: Sequence[NodeSpec] = (), extra_links: Iterable[tuple[str, str]] = ()
) -> list[NodeSnapshot]:
    """``nodes`` with ``group`` set on each (a node alone is a group of one, labelled with its name)."""
    links = group_links(nodes, specs) | set(extra_links)
    labels = label_groups([node.name for node in nodes], links, specs)
    return [
        node if node.group == labels[node.name] else node.model_copy(update={"group": labels[node.name]})
        for node in nodes
    ]


class GroupTracker:
    """Keeps every link seen by a source, so that a member that stops answering stays in its group."""

    def __init__(self) -> None:
        self.links: set[tuple[str, str]] = set()

    def assign(self, nodes: Sequence[NodeSnapshot], specs: Sequence[NodeSpec]) -> list[NodeSnapshot]:
        known = {node.name for node in nodes}
        self.links |= group_links(nodes, specs)
        self.links = {link for link in self.links if link[0] in known and link[1] in known}
        return assign_groups(nodes, specs, self.links)
