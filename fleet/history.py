"""Recent figures per node, in a small ring buffer: the trends behind the sparklines, the plots and time-to-full.

    history = FleetHistory(span_seconds=900, bucket_seconds=5)   # 15 minutes in 180 buckets per node
    history.add(snapshot)                                         # one per refresh tick
    history.series("orders-a", "write_rate")                      # closed buckets' means, oldest first
    history.points("orders-a", "lag_seconds")                     # (epoch seconds, value) for a plot's axis
    history.time_to_full("orders-a")                              # seconds, at the recent growth rate

Each node keeps at most ``span_seconds / bucket_seconds`` buckets; a tick folds its figures into
the bucket it falls in (a running sum per metric), so memory and the cost of a read are bounded by
the bucket count, not by the ticks. The bucket still filling is left out of ``series``: a trend
then moves once per bucket, not on every tick (bytes over a slow link). ``bucket_seconds=0``
makes every snapshot its own point, all of them shown (a recorded fleet, replayed without a clock).
A node that is unreachable adds nothing: its trend has a gap, never a made-up zero.

When the source keeps history itself (Prometheus: fleet.prometheus_trends), ``load``
puts its ranges in place of the buckets for the metrics it has; the others (the disk's bytes for
time-to-full) stay the ring's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from fleet.snapshot import FleetSnapshot, NodeSnapshot

__all__ = ["DEFAULT_BUCKET_SECONDS", "DEFAULT_SPAN_SECONDS", "FleetHistory", "METRICS", "TREND_METRICS", "linear_slope"]

DEFAULT_SPAN_SECONDS = 900.0  # 15 minutes: long enough to see a disk filling or a lag growing
DEFAULT_BUCKET_SECONDS = 5.0


def _float(value: float | int | None) -> float | None:
    return None if value is None else float(value)


METRICS: dict[str, Callable[[NodeSnapshot], float | None]] = {
    "disk_used": lambda node: _float(node.disk.volume_used_bytes),
    "disk_ratio": lambda node: node.disk.usage_ratio,
    "memory_ratio": lambda node: node.memory.usage_ratio,
    "node_rss": lambda node: _float(node.memory.node_rss_bytes),
    "lag_seconds": lambda node: node.replication.lag_seconds,
    "lag_records": lambda node: _float(node.replication.lag_records),
    "write_rate": lambda node: node.performance.write_ops_per_second,
    "read_rate": lambda node: node.performance.read_ops_per_second,
    "write_p95": lambda node: node.performance.write_p95_ms,
    "read_p95": lambda node: node.performance.read_p95_ms,
    "error_rate": lambda node: node.performance.error_rate_per_second,
}

# The trends a person looks at, in the order the console shows them: (metric, label, unit).
TREND_METRICS: tuple[tuple[str, str, str], ...] = (
    ("disk_ratio", "disk", "ratio"),
    ("write_rate", "writes", "/s"),
    ("read_rate", "reads", "/s"),
    ("write_p95", "p95 write", "ms"),
    ("read_p95", "p95 read", "ms"),
    ("error_rate", "errors", "/s"),
    ("lag_seconds", "lag", "s"),
    ("memory_ratio", "memory", "ratio"),
)


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


@dataclass
class _Bucket:
    key: int
    time_sum: float = 0.0
    ticks: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, at: float, node: NodeSnapshot) -> None:
        self.time_sum += at
        self.ticks += 1
        for metric, read in METRICS.items():
            value = read(node)
            if value is not None:
                self.sums[metric] = self.sums.get(metric, 0.0) + value
                self.counts[metric] = self.counts.get(metric, 0) + 1

    @property
    def at(self) -> float:
        return self.time_sum / self.ticks

    def mean(self, metric: str) -> float | None:
        count = self.counts.get(metric)
        return self.sums[metric] / count if count else None


class _NodeRing:
    """One node's buckets, oldest first; ``revision`` moves when a bucket closes (what a reader caches on)."""

    def __init__(self, size: int) -> None:
        self.buckets: deque[_Bucket] = deque(maxlen=size)
        self.revision = 0
        self.cache: dict[str, list[tuple[float, float]]] = {}
        self.loaded: dict[str, list[tuple[float, float]]] = {}  # a source's own ranges, per metric


class FleetHistory:
    """The last ``span_seconds`` of every node's figures, one bucket per ``bucket_seconds`` (0: per snapshot)."""

    def __init__(
        self, span_seconds: float = DEFAULT_SPAN_SECONDS, bucket_seconds: float = DEFAULT_BUCKET_SECONDS
    ) -> None:
        if span_seconds <= 0 or bucket_seconds < 0:
            raise ValueError("span_seconds must be > 0 and bucket_seconds >= 0")
        self.span_seconds = span_seconds
        self.bucket_seconds = bucket_seconds
        self.size = max(3, int(span_seconds / bucket_seconds) if bucket_seconds else int(span_seconds))
        self._nodes: dict[str, _NodeRing] = {}
        self._ticks = 0
        self.latest: FleetSnapshot | None = None

    def add(self, snapshot: FleetSnapshot) -> None:
        self.latest = snapshot
        at = snapshot.taken_at.timestamp()
        key = int(at // self.bucket_seconds) if self.bucket_seconds else self._ticks
        self._ticks += 1
        for node in snapshot.nodes:
            if not node.reachable:
                continue
            ring = self._nodes.get(node.name)
            if ring is None:
                ring = self._nodes[node.name] = _NodeRing(self.size)
            if not ring.buckets or ring.buckets[-1].key != key:
                ring.buckets.append(_Bucket(key))
                ring.revision += 1
                ring.cache.clear()
            ring.buckets[-1].add(at, node)
            if not self.bucket_seconds:
                ring.revision += 1
                ring.cache.clear()

    def load(self, ranges: Mapping[str, Mapping[str, list[tuple[float, float]]]]) -> None:
        """The source's own history, {node: {metric: [(epoch s, value)]}}: shown instead of the buckets
        for those metrics (the newest ``size`` points); a reader sees the change (``revision``)."""
        for name, series in ranges.items():
            ring = self._nodes.get(name)
            if ring is None:
                ring = self._nodes[name] = _NodeRing(self.size)
            loaded = {metric: list(points)[-self.size :] for metric, points in series.items() if metric in METRICS}
            if loaded != ring.loaded:
                ring.loaded = loaded
                ring.revision += 1
                ring.cache.clear()

    def revision(self, name: str) -> int:
        """Moves when ``name``'s series change: a reader may keep what it built until then."""
        ring = self._nodes.get(name)
        return -1 if ring is None else ring.revision

    def points(self, name: str, metric: str) -> list[tuple[float, float]]:
        """(epoch seconds, mean) per closed bucket of ``metric`` for node ``name``, oldest first; gaps skipped."""
        if metric not in METRICS:
            raise KeyError(f"no metric {metric!r} (one of {', '.join(METRICS)})")
        ring = self._nodes.get(name)
        if ring is None:
            return []
        cached = ring.cache.get(metric)
        if cached is not None:
            return cached
        if metric in ring.loaded:
            return ring.loaded[metric]
        buckets = list(ring.buckets)
        if self.bucket_seconds and buckets:
            buckets = buckets[:-1]  # still filling
        found = []
        for bucket in buckets:
            value = bucket.mean(metric)
            if value is not None:
                found.append((bucket.at, value))
        ring.cache[metric] = found
        return found

    def series(self, name: str, metric: str) -> list[float]:
        """The values of ``metric`` for node ``name``, oldest first (gaps skipped)."""
        return [value for _at, value in self.points(name, metric)]

    def time_to_full(self, name: str) -> float | None:
        """Seconds until the node's volume is full at the recent growth rate; None if not growing."""
        latest = self.latest
        node = latest.node(name) if latest else None
        if node is None or node.disk.free_bytes is None:
            return None
        points = self.points(name, "disk_used")
        if len(points) < 3:
            return None
        start = points[0][0]
        slope = linear_slope([(at - start, value) for at, value in points])
        if slope is None or slope <= 0:
            return None
        return node.disk.free_bytes / slope
