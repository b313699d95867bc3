"""Probes answered from a fleet snapshot (``playbooks.fleet.FleetSnapshot``): replication and clusters.

They read a node's ``name``, ``role``, ``epoch``, ``health``, ``reachable``, ``peers``,
``replication``, ``disk``/``memory`` and ``alerts`` by name (attribute or mapping key), so a recorded snapshot
loaded as plain JSON answers the same. Without a snapshot they answer "cannot tell", with why:
replication state comes from the nodes' HTTP API, not from a data dir. Alerts firing in
Alertmanager (merged into the snapshot by playbooks.fleet.alertmanager) are evidence too:
"Alertmanager: DrconsoleNodeDown firing on orders-a since 12:03:41 UTC".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from playbooks.probes.base import Answer, ProbeContext, probe

__all__ = ["alert_evidence", "field", "firing_alerts", "fleet_nodes", "node_figure"]

_NO_FLEET = Answer(None, "no fleet snapshot: replication and cluster state come from the nodes' HTTP API "
                         "(use --node with a url in the config)")


def field(item: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if isinstance(item, dict) and name in item:
            return item[name]
        if not isinstance(item, dict) and hasattr(item, name):
            return getattr(item, name)
    return default


def fleet_nodes(context: ProbeContext) -> list[Any]:
    if context.snapshot is None:
        return []
    nodes = field(context.snapshot, "nodes", default=[])
    if isinstance(nodes, dict):
        nodes = list(nodes.values())
    return list(nodes or [])


def _name(node: Any) -> str:
    return str(field(node, "name", default="?"))


def _reachable(node: Any) -> bool:
    value = field(node, "reachable", "up")
    if value is not None:
        return bool(value)
    health = str(field(node, "health", "status", default="")).lower()
    return health not in ("down", "unreachable", "unhealthy", "dead", "")


def _healthy(node: Any) -> bool:
    health = str(field(node, "health", "status", default="ok")).lower()
    return _reachable(node) and health in ("ok", "healthy")


def _role(node: Any) -> str:
    return str(field(node, "role", default="") or "").lower()


def node_figure(context: ProbeContext, name: str) -> float | None:
    """``disk_usage_ratio`` or ``memory_usage_ratio`` of the context's node, from the snapshot."""
    if context.node is None:
        return None
    part = name.split("_")[0]  # "disk" or "memory"
    for node in fleet_nodes(context):
        if _name(node) == context.node:
            value = field(field(node, part, default={}), "usage_ratio", "reported_usage_ratio")
            return float(value) if isinstance(value, (int, float)) else None
    return None


def _names(nodes: Iterable[Any]) -> str:
    return ", ".join(_name(node) for node in nodes)


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
    """"Alertmanager: DrconsoleNodeDown firing on orders-a since 12:03:41 UTC; ..." ("" for none)."""
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


@probe("node.down")
def node_down(context: ProbeContext) -> Answer:
    """Is the node down (unreachable, or Alertmanager's node-down alert firing)?"""
    nodes = fleet_nodes(context)
    if not nodes or context.node is None:
        return _NO_FLEET
    node = next((item for item in nodes if _name(item) == context.node), None)
    if node is None:
        return Answer(None, f"{context.node} is not in the fleet snapshot")
    alerts = firing_alerts(context, [node], rule="node-down")
    if alerts:
        return _with_alerts(Answer(True, f"{context.node} is down"), alerts)
    if not _reachable(node):
        return Answer(True, f"{context.node} unreachable: {field(node, 'health_reason', default='')}".rstrip(": "))
    return Answer(False, f"{context.node} answers ({field(node, 'health_reason', default='reachable')})")


@probe("fleet.available")
def fleet_available(context: ProbeContext) -> Answer:
    """Is there a fleet snapshot to answer replication and cluster questions from?"""
    nodes = fleet_nodes(context)
    if not nodes:
        return Answer(False, "no fleet snapshot: triage of one data dir (replication questions skipped)")
    taken = field(context.snapshot, "taken_at")
    when = f" taken at {taken:%H:%M:%S}" if hasattr(taken, "strftime") else ""
    source = field(context.snapshot, "source", default="")
    return Answer(True, f"fleet snapshot of {len(nodes)} node(s){when}" + (f" ({source})" if source else ""))


@probe("replication.split_brain")
def split_brain(context: ProbeContext) -> Answer:
    """Is there a split brain (two primaries in one epoch)?"""
    nodes = fleet_nodes(context)
    if not nodes:
        return _NO_FLEET
    flagged = [node for node in nodes if field(field(node, "replication", default={}), "split_brain")]
    primaries = [node for node in nodes if _role(node) == "primary" and _reachable(node)]
    epochs: dict[Any, list[Any]] = {}
    for node in primaries:
        epochs.setdefault(field(node, "epoch"), []).append(node)
    alerts = firing_alerts(context, rule="split-brain")
    for epoch, same in epochs.items():
        if len(same) > 1:
            return _with_alerts(Answer(True, f"{_names(same)} are all primary in epoch {epoch}"), alerts)
    if flagged:
        return _with_alerts(Answer(True, f"{_names(flagged)} report a split brain"), alerts)
    if alerts:
        return _with_alerts(Answer(True, "Prometheus saw two primaries in one epoch"), alerts)
    return Answer(False, f"{len(primaries)} reachable primary" + ("" if len(primaries) == 1 else "s")
                  + f" among {len(nodes)} nodes; no two in one epoch")


@probe("replication.primary_down")
def primary_down(context: ProbeContext) -> Answer:
    """Is the primary down while a standby is healthy?"""
    nodes = fleet_nodes(context)
    if not nodes:
        return _NO_FLEET
    primaries = [node for node in nodes if _role(node) == "primary"]
    standbys = [node for node in nodes if _role(node) in ("standby", "replica", "secondary") and _healthy(node)]
    down = [node for node in primaries if not _reachable(node)]
    answer = _primary_down(primaries, standbys, down)
    return _with_alerts(answer, firing_alerts(context, primaries, rule="node-down"))


def _primary_down(primaries: list[Any], standbys: list[Any], down: list[Any]) -> Answer:
    if not primaries:
        return Answer(True if standbys else False, "no primary in the fleet"
                      + (f"; healthy standby: {_names(standbys)}" if standbys else "; no healthy standby either"))
    if down and standbys:
        lag = field(field(standbys[0], "replication", default={}), "lag_seconds")
        lag_text = f", lag {lag:.1f} s" if isinstance(lag, (int, float)) else ""
        return Answer(True, f"primary {_names(down)} unreachable; standby {_name(standbys[0])} healthy{lag_text}")
    if down:
        return Answer(False, f"primary {_names(down)} unreachable and no healthy standby to fail over to")
    return Answer(False, f"primary {_names(primaries)} reachable")


@probe("replication.fenced_node")
def fenced_node(context: ProbeContext) -> Answer:
    """Is a node fenced: an old primary that learnt of a newer epoch and takes no writes until it rejoins?"""
    nodes = fleet_nodes(context)
    if not nodes:
        return _NO_FLEET
    fenced = [node for node in nodes if _reachable(node) and _role(node) == "fenced"]
    if fenced:
        return Answer(True, f"{_names(fenced)} fenced: it refuses writes until it rejoins as a standby")
    return Answer(False, "no node is fenced")


@probe("cluster.all_down")
def all_down(context: ProbeContext) -> Answer:
    """Are all nodes down (total cluster loss)?"""
    nodes = fleet_nodes(context)
    if not nodes:
        return _NO_FLEET
    up = [node for node in nodes if _reachable(node)]
    return _with_alerts(Answer(not up, f"{len(up)} of {len(nodes)} nodes reachable"),
                        firing_alerts(context, rule="node-down"))


@probe("cluster.minority_survives")
def minority_survives(context: ProbeContext) -> Answer:
    """Does only a minority of the nodes survive?"""
    nodes = fleet_nodes(context)
    if not nodes:
        return _NO_FLEET
    up = [node for node in nodes if _reachable(node)]
    # Strictly fewer than half: one of a primary/standby pair lost is an isolated node, not a minority.
    return _with_alerts(Answer(len(up) * 2 < len(nodes) and len(nodes) > 1,
                               f"{len(up)} of {len(nodes)} nodes reachable ({_names(up) or 'none'})"),
                        firing_alerts(context, rule="node-down"))


@probe("cluster.partition")
def partition(context: ProbeContext) -> Answer:
    """Is the cluster partitioned (nodes see different peer sets)?"""
    nodes = [node for node in fleet_nodes(context) if _reachable(node)]
    if not nodes:
        return _NO_FLEET
    views = {}
    for node in nodes:
        peers = field(node, "peers")
        if peers is None:
            continue
        views[_name(node)] = frozenset([_name(node), *[str(field(p, "name", default=p)) for p in peers]])
    if len(views) < 2:
        return Answer(None, "fewer than two nodes report their peers")
    groups = set(views.values())
    if len(groups) > 1:
        shown = " | ".join(sorted(",".join(sorted(group)) for group in groups))
        return Answer(True, f"nodes see different peer sets: {shown}")
    return Answer(False, f"{len(views)} nodes agree on their peers")


@probe("cluster.isolated_node")
def isolated_node(context: ProbeContext) -> Answer:
    """Is a node isolated (reachable but with no peers)?"""
    nodes = [node for node in fleet_nodes(context) if _reachable(node)]
    if not nodes:
        return _NO_FLEET
    isolated = [node for node in nodes if field(node, "peers") is not None and not field(node, "peers")]
    if len(nodes) > 1 and isolated:
        return Answer(True, f"{_names(isolated)} reachable but with no peers")
    lost = [node for node in fleet_nodes(context) if not _reachable(node)]
    if len(lost) == 1 and any(_role(node) == "primary" for node in nodes):
        return Answer(True, f"{_names(lost)} unreachable while the rest of the cluster answers: cut off "
                            "(isolated, or hung)")
    return Answer(False, "every reachable node has peers" if len(nodes) > 1 else "a single node: nothing to be isolated from")
