"""Probes answered from a fleet snapshot (``fleet.FleetSnapshot``): replication groups and clusters.

Every cluster question is asked of one replication group: the target node's (``--node``), or each
group of the fleet when no node is named. A node alone in its group (three independent primaries
in one config are three groups of one) is "not a replication group": no split brain, no failover,
no partition can concern it, and the probes say so rather than misfire. Groups come from the
snapshot (``NodeSnapshot.group``, set by every source) or, for a snapshot without them (a recording,
plain JSON), from the configured nodes and what the nodes report (``fleet.groups``).

Alerts firing in Alertmanager (merged into the snapshot by fleet.alertmanager) are
evidence too: "Alertmanager: DrconsoleNodeDown firing on orders-a since 12:03:41 UTC". A probe
whose finding is about another node than the target (the down primary, the fenced node, the member
that does not answer) names it in ``data["subject"]``: the playbook is run on that node.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fleet.groups import assign_groups
from fleet.snapshot import FleetSnapshot, Health, NodeSnapshot
from playbooks.probes.base import Answer, ProbeContext, probe

__all__ = [
    "alert_evidence",
    "field",
    "firing_alerts",
    "fleet_nodes",
    "fleet_snapshot",
    "node_figure",
    "target_node",
    "group_scopes",
    "names",
]

_NO_FLEET = Answer(
    None,
    "no fleet snapshot: replication and cluster state come from the nodes' HTTP API "
    "(use --node with a url in the config)",
)
_STANDBY_ROLES = ("standby", "replica", "secondary")


def field(item: Any, *keys: str, default: Any = None) -> Any:
    for key in keys:
        if isinstance(item, dict) and key in item:
            return item[key]
        if not isinstance(item, dict) and hasattr(item, key):
            return getattr(item, key)
    return default


def fleet_snapshot(context: ProbeContext) -> FleetSnapshot | None:
    """The context's snapshot as a ``FleetSnapshot`` (one loaded as plain JSON is validated once)."""
    snapshot = context.snapshot
    if snapshot is None or isinstance(snapshot, FleetSnapshot):
        return snapshot
    return context.cached("fleet-snapshot", lambda: FleetSnapshot.model_validate(snapshot))  # type: ignore[no-any-return]


def fleet_nodes(context: ProbeContext) -> list[NodeSnapshot]:
    """The snapshot's nodes, each with its replication group set."""
    snapshot = fleet_snapshot(context)
    if snapshot is None:
        return []

    def grouped() -> list[NodeSnapshot]:
        nodes = list(snapshot.nodes)
        if all(node.group is not None for node in nodes):
            return nodes
        return assign_groups(nodes, context.specs)

    return context.cached("fleet-nodes", grouped)  # type: ignore[no-any-return]


def target_node(context: ProbeContext) -> NodeSnapshot | None:
    return next((node for node in fleet_nodes(context) if node.name == context.node), None)


def names(nodes: Iterable[NodeSnapshot]) -> str:
    return ", ".join(node.name for node in nodes)


def _healthy(node: NodeSnapshot) -> bool:
    return node.reachable and node.health in (Health.OK, Health.DEGRADED)


def node_figure(context: ProbeContext, name: str) -> float | None:
    """``disk_usage_ratio`` or ``memory_usage_ratio`` of the context's node, from the snapshot."""
    node = target_node(context)
    if node is None or not node.reachable:
        return None
    return node.disk.usage_ratio if name.startswith("disk") else node.memory.usage_ratio


def firing_alerts(context: ProbeContext, nodes: Iterable[Any] | None = None, *, rule: str | None = None) -> list[Any]:
    """The Alertmanager alerts firing on ``nodes`` (default: every node), of ``rule`` when given."""
    found = []
    for node in fleet_nodes(context) if nodes is None else nodes:
        for alert in field(node, "alerts", default=()) or ():
            if field(alert, "source") == "alertmanager" and (rule is None or field(alert, "rule") == rule):
                found.append(alert)
    return found


def _alert_name(alert: Any) -> str:
    labels = dict(field(alert, "labels", default=()) or ())
    return str(labels.get("alertname") or field(alert, "rule", default="alert"))


def alert_evidence(alerts: Iterable[Any]) -> str:
    """ "Alertmanager: DrconsoleNodeDown firing on orders-a since 12:03:41 UTC; ..." ("" for none)."""
    parts = []
    for alert in alerts:
        since = field(alert, "since")
        when = f" since {since:%H:%M:%S %Z}".rstrip() if hasattr(since, "strftime") else ""
        parts.append(f"{_alert_name(alert)} firing on {field(alert, 'node', default='?')}{when}")
    return "Alertmanager: " + "; ".join(parts) if parts else ""


def _with_alerts(answer: Answer, alerts: list[Any]) -> Answer:
    """``answer`` with the Alertmanager alerts that bear on it added to its evidence."""
    extra = alert_evidence(alerts)
    if extra:
        answer.evidence = f"{answer.evidence}; {extra}"
        answer.data.setdefault("alerts", [_alert_name(alert) for alert in alerts])
    return answer


# ------------------------------------------------------------------------------------------- groups
def group_scopes(context: ProbeContext) -> tuple[list[tuple[str, list[NodeSnapshot]]], Answer | None]:
    """The replication groups (label, members) a cluster question is about, or the answer when there is none.

    With a target node: its group, when it has other members. Without: every group of two or more.
    """
    nodes = fleet_nodes(context)
    if not nodes:
        return [], _NO_FLEET
    groups: dict[str, list[NodeSnapshot]] = {}
    for node in nodes:
        groups.setdefault(node.group or node.name, []).append(node)
    if context.node is not None:
        target = target_node(context)
        if target is None:
            return [], Answer(None, f"{context.node} is not in the fleet snapshot ({names(nodes)})")
        members = groups[target.group or target.name]
        if len(members) < 2:
            return [], Answer(
                False,
                f"{target.name} is not in a replication group: no other node follows it, is "
                "followed by it or polls it as a peer (set group or upstream in the config "
                "for nodes that replicate)",
            )
        return [(target.group or target.name, members)], None
    replicated = [(label, members) for label, members in sorted(groups.items()) if len(members) > 1]
    if not replicated:
        return [], Answer(
            False,
            f"no replication group among the {len(nodes)} node(s): each replicates with no "
            "other (independent primaries are never a split brain)",
        )
    return replicated, None


def _describe(label: str, members: list[NodeSnapshot]) -> str:
    return f"group {label} ({names(members)})"


def _each_group(context: ProbeContext, finding: Any, nothing: str) -> Answer:
    """``finding(label, members) -> Answer | None`` over the groups in scope; the first found, else no."""
    scopes, answer = group_scopes(context)
    if answer is not None:
        return answer
    for label, members in scopes:
        found = finding(label, members)
        if found is not None:
            return found  # type: ignore[no-any-return]
    return Answer(
        False,
        "; ".join(
            nothing.format(
                group=_describe(label, members), count=len(members), up=sum(node.reachable for node in members)
            )
            for label, members in scopes
        ),
    )


@probe("fleet.available")
def fleet_available(context: ProbeContext) -> Answer:
    """Is there a fleet snapshot to answer replication and cluster questions from?"""
    nodes = fleet_nodes(context)
    if not nodes:
        return Answer(False, "no fleet snapshot: triage of one data dir (replication questions skipped)")
    snapshot = fleet_snapshot(context)
    taken = snapshot.taken_at if snapshot is not None else None
    when = f" taken at {taken:%H:%M:%S}" if taken is not None else ""
    source = snapshot.source if snapshot is not None else ""
    return Answer(True, f"fleet snapshot of {len(nodes)} node(s){when}" + (f" ({source})" if source else ""))


@probe("replication.in_group")
def in_group(context: ProbeContext) -> Answer:
    """Is the node part of a replication group (other nodes replicate with it)?"""
    scopes, answer = group_scopes(context)
    if answer is not None:
        return answer
    return Answer(
        True,
        "; ".join(f"{_describe(label, members)}" for label, members in scopes),
        {"groups": {label: [node.name for node in members] for label, members in scopes}},
    )


@probe("node.down")
def node_down(context: ProbeContext) -> Answer:
    """Is the node down (unreachable, or Alertmanager's node-down alert firing)?"""
    nodes = fleet_nodes(context)
    if not nodes or context.node is None:
        return _NO_FLEET
    node = target_node(context)
    if node is None:
        return Answer(None, f"{context.node} is not in the fleet snapshot")
    alerts = firing_alerts(context, [node], rule="node-down")
    if alerts:
        return _with_alerts(Answer(True, f"{context.node} is down"), alerts)
    if not node.reachable:
        return Answer(True, f"{context.node} unreachable: {node.health_reason}".rstrip(": "))
    return Answer(False, f"{context.node} answers ({node.health_reason or 'reachable'})")


@probe("replication.split_brain")
def split_brain(context: ProbeContext) -> Answer:
    """Are two unfenced primaries of one replication group in the same epoch (split brain)?"""

    def finding(label: str, members: list[NodeSnapshot]) -> Answer | None:
        alerts = firing_alerts(context, members, rule="split-brain")
        primaries = [node for node in members if node.role == "primary" and node.reachable]
        epochs: dict[int | None, list[NodeSnapshot]] = {}
        for node in primaries:
            epochs.setdefault(node.epoch, []).append(node)
        for epoch, same in epochs.items():
            if len(same) > 1:
                return _with_alerts(
                    Answer(
                        True,
                        f"{names(same)} are all primary in epoch {epoch}, in {_describe(label, members)}",
                        {"subject": same[0].name},
                    ),
                    alerts,
                )
        flagged = [node for node in members if node.replication.split_brain]
        if flagged:
            return _with_alerts(
                Answer(
                    True,
                    f"{names(flagged)} report a split brain (a peer primary in their "
                    f"epoch), in {_describe(label, members)}",
                ),
                alerts,
            )
        if alerts:
            return _with_alerts(Answer(True, f"Prometheus saw two primaries in one epoch in {label}"), alerts)
        return None

    return _each_group(context, finding, "{group}: no two reachable primaries in one epoch")


@probe("replication.primary_down")
def primary_down(context: ProbeContext) -> Answer:
    """Is the group's primary down while a standby is healthy?"""

    def finding(label: str, members: list[NodeSnapshot]) -> Answer | None:
        primaries = [node for node in members if node.role == "primary"]
        standbys = [node for node in members if node.role in _STANDBY_ROLES and _healthy(node)]
        down = [node for node in primaries if not node.reachable]
        alerts = firing_alerts(context, primaries, rule="node-down")
        if down and standbys:
            lag = standbys[0].replication.lag_seconds
            lag_text = f", lag {lag:.1f} s" if lag is not None else ""
            return _with_alerts(
                Answer(
                    True,
                    f"primary {names(down)} unreachable; standby {standbys[0].name} healthy{lag_text}",
                    {"subject": down[0].name},
                ),
                alerts,
            )
        if not primaries and standbys and any(not node.reachable for node in members):
            lost = [node for node in members if not node.reachable]
            return Answer(
                True,
                f"no primary answers in {_describe(label, members)} ({names(lost)} unreachable); "
                f"healthy standby: {names(standbys)}",
                {"subject": lost[0].name},
            )
        return None

    return _each_group(context, finding, "{group}: its primary answers, or no healthy standby could take over")


def down_primary(context: ProbeContext) -> NodeSnapshot | None:
    """The down primary ``primary_down`` found (the subject of the questions after it)."""
    found = primary_down(context)
    subject = found.data.get("subject") if found.answer else None
    return next((node for node in fleet_nodes(context) if node.name == subject), None)


@probe("replication.fenced_node")
def fenced_node(context: ProbeContext) -> Answer:
    """Is a node of the group fenced: an old primary that learnt of a newer epoch and takes no writes?"""

    def finding(label: str, members: list[NodeSnapshot]) -> Answer | None:
        fenced = [
            node for node in members if node.reachable and (node.role == "fenced" or node.health == Health.FENCED)
        ]
        if fenced:
            return Answer(
                True,
                f"{names(fenced)} fenced: it refuses writes until it rejoins as a standby",
                {"subject": fenced[0].name},
            )
        return None

    return _each_group(context, finding, "{group}: no node is fenced")


@probe("cluster.all_down")
def all_down(context: ProbeContext) -> Answer:
    """Are all nodes of the group down (total cluster loss)?"""

    def finding(label: str, members: list[NodeSnapshot]) -> Answer | None:
        if any(node.reachable for node in members):
            return None
        return _with_alerts(
            Answer(True, f"0 of {len(members)} nodes of {_describe(label, members)} reachable"),
            firing_alerts(context, members, rule="node-down"),
        )

    return _each_group(context, finding, "{group}: {up} of {count} reachable")


@probe("cluster.minority_survives")
def minority_survives(context: ProbeContext) -> Answer:
    """Does only a minority of the group's nodes survive?"""

    def finding(label: str, members: list[NodeSnapshot]) -> Answer | None:
        up = [node for node in members if node.reachable]
        # Strictly fewer than half: one of a primary/standby pair lost is a member down, not a minority.
        if len(up) * 2 < len(members) and up:
            return _with_alerts(
                Answer(
                    True, f"{len(up)} of {len(members)} nodes of {_describe(label, members)} reachable ({names(up)})"
                ),
                firing_alerts(context, members, rule="node-down"),
            )
        return None

    return _each_group(context, finding, "{group}: {up} of {count} reachable (at least half)")


@probe("cluster.partition")
def partition(context: ProbeContext) -> Answer:
    """Is the group partitioned (members follow different primaries, or a standby cannot reach a primary we can)?"""

    def finding(label: str, members: list[NodeSnapshot]) -> Answer | None:
        up = [node for node in members if node.reachable]
        views = {node.name: set(node.primaries_named) for node in up if len(set(node.primaries_named)) > 1}
        if views:
            shown = "; ".join(f"{name} sees {', '.join(sorted(seen))}" for name, seen in sorted(views.items()))
            return Answer(True, f"members of {_describe(label, members)} name different primaries: {shown}")
        reachable = {node.name for node in up} | {node.address for node in up if node.address}
        cut = [
            node
            for node in up
            if node.role in _STANDBY_ROLES
            and node.replication.connected is False
            and (node.replication.upstream or "").rstrip("/") in reachable
        ]
        if cut:
            node = cut[0]
            return Answer(
                True,
                f"standby {node.name} cannot reach its upstream {node.replication.upstream}, which answers here",
                {"subject": node.name},
            )
        return None

    return _each_group(
        context,
        finding,
        "{group}: the reachable members agree on one primary and every reachable standby streams from it",
    )


@probe("cluster.isolated_node")
def isolated_node(context: ProbeContext) -> Answer:
    """Is a member cut off from its peers (it answers here, but reaches none of the peers that do)?"""

    def finding(label: str, members: list[NodeSnapshot]) -> Answer | None:
        answering = {node.name for node in members if node.reachable}
        answering |= {node.address for node in members if node.reachable and node.address}
        for node in members:
            if not node.reachable or not node.peers or node.peers_reachable is None or node.peers_reachable:
                continue
            alive = [peer for peer in node.peers if peer.rstrip("/") in answering]
            if alive:
                return Answer(
                    True,
                    f"{node.name} answers here but reaches none of its peers, while "
                    f"{', '.join(alive)} answer here too: it is cut off",
                    {"subject": node.name},
                )
        return None

    return _each_group(context, finding, "{group}: every member that answers reaches its peers (or polls none)")


@probe("cluster.member_down")
def member_down(context: ProbeContext) -> Answer:
    """Does a member of the group not answer while the others do?"""

    def finding(label: str, members: list[NodeSnapshot]) -> Answer | None:
        lost = [node for node in members if not node.reachable]
        if not lost or len(lost) == len(members):
            return None
        lost.sort(key=lambda node: node.name != context.node)  # the target first: it is what is triaged
        node = lost[0]
        return _with_alerts(
            Answer(
                True,
                f"{node.name} ({node.role}) does not answer: {node.health_reason}; "
                f"{names(node for node in members if node.reachable)} answer",
                {"subject": node.name},
            ),
            firing_alerts(context, lost, rule="node-down"),
        )

    return _each_group(context, finding, "{group}: {up} of {count} answer")


def lost_member(context: ProbeContext) -> NodeSnapshot | None:
    """The member ``member_down`` found (the subject of the questions after it)."""
    found = member_down(context)
    subject = found.data.get("subject") if found.answer else None
    return next((node for node in fleet_nodes(context) if node.name == subject), None)
