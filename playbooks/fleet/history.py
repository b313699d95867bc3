"""Recent snapshots per node: the series behind the sparklines and the time-to-full estimate."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime

from playbooks.fleet.snapshot import FleetSnapshot, NodeSnapshot

__all__ = ["FleetHistory", "METRICS", "linear_slope"]

METRICS: dict[str, Callable[[NodeSnapshot], float | None]] = {
    "disk_used": lambda node: None if node.disk.volume_used_bytes is None else float(node.disk.volume_used_bytes),
    "disk_ratio": lambda node: node.disk.usage_ratio,
    "memory_ratio": lambda node: node.memory.usage_ratio,
    "node_rss": lambda node: None if node.memory.node_rss_bytes is None else float(node.memory.node_rss_bytes),
    "lag_seconds": lambda node: node.replication.lag_seconds,
    "lag_records": lambda node: None if node.replication.lag_records is None else float(node.replication.lag_records),
}


def linear_slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (x, y) points; None with fewer than two distinct x."""
    if len(points) < 2:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


class FleetHistory:
    """The last ``size`` snapshots; series are read per node and metric."""

    def __init__(self, size: int = 120) -> None:
        self.snapshots: deque[FleetSnapshot] = deque(maxlen=size)

    def add(self, snapshot: FleetSnapshot) -> None:
        self.snapshots.append(snapshot)

    @property
    def latest(self) -> FleetSnapshot | None:
        return self.snapshots[-1] if self.snapshots else None

    def _points(self, name: str, metric: str) -> list[tuple[datetime, float]]:
        read = METRICS[metric]
        points = []
        for snapshot in self.snapshots:
            node = snapshot.node(name)
            if node is not None and node.reachable:
                value = read(node)
                if value is not None:
                    points.append((snapshot.taken_at, value))
        return points

    def series(self, name: str, metric: str, bucket_seconds: float | None = None) -> list[float]:
        """The values of ``metric`` for node ``name``, oldest first (gaps skipped).

        With ``bucket_seconds``, one value per bucket (their mean), the bucket still filling left
        out: the series then changes once per bucket, not on every tick.
        """
        points = self._points(name, metric)
        if not bucket_seconds:
            return [value for _at, value in points]
        buckets: dict[int, list[float]] = {}
        for at, value in points:
            buckets.setdefault(int(at.timestamp() // bucket_seconds), []).append(value)
        latest = self.latest
        current = int(latest.taken_at.timestamp() // bucket_seconds) if latest is not None else None
        return [sum(values) / len(values) for key, values in sorted(buckets.items()) if key != current]

    def time_to_full(self, name: str) -> float | None:
        """Seconds until the node's volume is full at the recent growth rate; None if not growing."""
        latest = self.latest
        node = latest.node(name) if latest else None
        if node is None or node.disk.free_bytes is None:
            return None
        points = self._points(name, "disk_used")
        if len(points) < 3:
            return None
        start = points[0][0]
        slope = linear_slope([((at - start).total_seconds(), value) for at, value in points])
        if slope is None or slope <= 0:
            return None
        return node.disk.free_bytes / slope
