"""One interface for every source of fleet snapshots, and what all of them share.

``FleetSource.collect()`` returns one ``FleetSnapshot`` per call (one per refresh tick). A source
is a set of ``NodeReader``s, one per node, read concurrently; a reader that does not answer within
the tick's deadline yields an "unreachable" node instead of stalling the tick. ``finalize`` then
does what needs the whole fleet: replication lag between local data dirs, split-brain detection,
the alert rules, and the health they imply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from fleet.alerts import Thresholds, evaluate_alerts
from fleet.groups import GroupTracker, group_links, label_groups
from fleet.nodes import NodeSpec
from fleet.snapshot import (
    AlertSeverity,
    FleetSnapshot,
    Health,
    NodeSnapshot,
    Replication,
    utc_now,
)

__all__ = ["Clock", "FleetSource", "NodeReader", "ReaderSource", "Reachability", "finalize", "replica_groups"]

Clock = Callable[[], datetime]


@runtime_checkable
class FleetSource(Protocol):
    """Anything the console can refresh from."""

    async def collect(self) -> FleetSnapshot:
        """One snapshot of the whole fleet; never raises for one node's failure."""
        ...

    async def aclose(self) -> None:
        """Release what the source holds (HTTP client, threads)."""
        ...


class NodeReader(Protocol):
    spec: NodeSpec

    async def read(self, now: datetime) -> NodeSnapshot:
        """The node as it is now; an unreachable node is a snapshot too, never an exception."""
        ...

    def unreachable(self, now: datetime, reason: str) -> NodeSnapshot:
        """The node as shown when it did not answer in time."""
        ...

    async def aclose(self) -> None: ...


class Reachability:
    """Remembers since when a node has been unreachable, and what it last said about itself."""

    def __init__(self) -> None:
        self.since: datetime | None = None
        self.last_good: NodeSnapshot | None = None

    def ok(self, node: NodeSnapshot) -> NodeSnapshot:
        self.since = None
        self.last_good = node
        return node

    def failed(self, spec: NodeSpec, now: datetime, reason: str, *, source: str, address: str | None) -> NodeSnapshot:
        if self.since is None:
            self.since = now
        known = self.last_good
        return NodeSnapshot(
            name=spec.name,
            engine=spec.engine or (known.engine if known else None),
            role=known.role if known else spec.role,
            epoch=known.epoch if known else None,
            health=Health.DOWN,
            health_reason=reason,
            reachable=False,
            unreachable_since=self.since,
            source=source,
            address=address,
            last_lsn=known.last_lsn if known else None,
            replication=Replication(upstream=spec.upstream),
        )


class ReaderSource:
    """A ``FleetSource`` made of one reader per node, read concurrently under one deadline."""

    def __init__(
        self,
        readers: Sequence[NodeReader],
        specs: Sequence[NodeSpec],
        *,
        thresholds: Thresholds | None = None,
        clock: Clock = utc_now,
        deadline_seconds: float = 2.0,
        label: str = "",
    ) -> None:
        self.readers = list(readers)
        self.specs = list(specs)
        self.thresholds = thresholds or Thresholds()
        self.clock = clock
        self.deadline_seconds = deadline_seconds
        self.label = label
        self.groups = GroupTracker()

    async def collect(self) -> FleetSnapshot:
        now = self.clock()
        nodes = await asyncio.gather(*(self._read_one(reader, now) for reader in self.readers))
        return finalize(nodes, self.specs, self.thresholds, now, source=self.label, groups=self.groups)

    async def _read_one(self, reader: NodeReader, now: datetime) -> NodeSnapshot:
        try:
            return await asyncio.wait_for(reader.read(now), self.deadline_seconds)
        except TimeoutError:
            return reader.unreachable(now, f"no answer within {self.deadline_seconds:g} s")

    async def aclose(self) -> None:
        for reader in self.readers:
            await reader.aclose()


def replica_groups(specs: Iterable[NodeSpec]) -> dict[str, str]:
    """node name -> replication group, from the config alone (``group``, else the upstream chain)."""
    specs = list(specs)
    return label_groups([spec.name for spec in specs], group_links((), specs), specs)


def _local_replication(node: NodeSnapshot, spec: NodeSpec | None, by_name: dict[str, NodeSnapshot]) -> NodeSnapshot:
    """Lag of a local standby data dir behind its upstream's, in records (LSNs)."""
    if spec is None or spec.upstream is None or node.source != "local":
        return node
    upstream = by_name.get(spec.upstream)
    replication = node.replication
    if replication.upstream is None:
        replication = replication.model_copy(update={"upstream": spec.upstream})
    if (
        replication.lag_records is None
        and upstream is not None
        and upstream.reachable
        and upstream.last_lsn is not None
        and node.last_lsn is not None
    ):
        replication = replication.model_copy(
            update={
                "applied_lsn": node.last_lsn,
                "primary_lsn": upstream.last_lsn,
                "lag_records": max(0, upstream.last_lsn - node.last_lsn),
            }
        )
    return node.model_copy(update={"replication": replication})


def _split_brain(nodes: list[NodeSnapshot]) -> list[NodeSnapshot]:
    """Two reachable primaries of one replication group in the same epoch: both are marked."""
    primaries: dict[tuple[str, int], list[str]] = {}
    for node in nodes:
        if node.reachable and node.role == "primary" and node.epoch is not None:
            primaries.setdefault((node.group or node.name, node.epoch), []).append(node.name)
    split = {name for names in primaries.values() if len(names) > 1 for name in names}
    return [
        node.model_copy(update={"replication": node.replication.model_copy(update={"split_brain": True})})
        if node.name in split and not node.replication.split_brain
        else node
        for node in nodes
    ]


def finalize(
    nodes: Sequence[NodeSnapshot],
    specs: Sequence[NodeSpec],
    thresholds: Thresholds,
    now: datetime,
    *,
    source: str = "",
    groups: GroupTracker | None = None,
) -> FleetSnapshot:
    """Fleet-wide facts and the alert rules applied to what the readers returned.

    ``groups``: the source's tracker, which remembers replication links across ticks.
    """
    spec_by_name = {spec.name: spec for spec in specs}
    by_name = {node.name: node for node in nodes}
    done = [_local_replication(node, spec_by_name.get(node.name), by_name) for node in nodes]
    done = (groups or GroupTracker()).assign(done, specs)
    done = _split_brain(done)
    result = []
    for node in done:
        alerts = evaluate_alerts(node, thresholds, now)
        update: dict[str, object] = {"alerts": alerts}
        critical = [alert for alert in alerts if alert.severity == AlertSeverity.CRITICAL]
        if critical and node.health in (Health.OK, Health.UNKNOWN):
            update["health"] = Health.DEGRADED
            update["health_reason"] = critical[0].message
        result.append(node.model_copy(update=update))
    return FleetSnapshot(taken_at=now, nodes=tuple(result), source=source)
