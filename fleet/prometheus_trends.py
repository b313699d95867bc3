"""A node's trends read from Prometheus as ranges (``query_range``), when Prometheus is the source.

    trends = PrometheusTrends(source, span_seconds=900, step_seconds=5)
    ranges = await trends.read()      # {"orders-a": {"write_rate": [(epoch s, value), ...], ...}, ...}

Prometheus has kept the figures all along: a console that opens shows the last 15 minutes at
once, not "no trend yet", and every console shows the same history. Two range queries per read,
whatever the number of nodes: the gauges (disk, memory, replication lag) and the derived figures
(``derived_query``: request rates, p95 latencies, error rate). The first read asks for the whole
span; later ones only for what is new since (the grid is aligned to ``step_seconds``, so points
land on the same instants and merge), and points older than the span are dropped.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleet.prometheus import PrometheusSource

__all__ = ["RANGE_GAUGES", "PrometheusTrends", "RangeSeries", "TrendRanges", "matrix"]

# A trend metric (fleet.history.METRICS) per gauge the nodes export.
RANGE_GAUGES = {
    "drconsole_disk_usage_ratio": "disk_ratio",
    "drconsole_memory_usage_ratio": "memory_ratio",
    "drconsole_replication_lag_seconds": "lag_seconds",
}
GAUGE_RANGE_QUERY = '{__name__=~"' + "|".join(RANGE_GAUGES) + '"}'
# derived_query's figures (its ``drconsole_figure`` label) as trend metrics, with their scale.
DERIVED_METRICS: dict[str, tuple[str, float]] = {
    "write_rate": ("write_rate", 1.0),
    "read_rate": ("read_rate", 1.0),
    "write_p95": ("write_p95", 1000.0),  # seconds -> ms, as the snapshot has them
    "read_p95": ("read_p95", 1000.0),
    "error_rate": ("error_rate", 1.0),
}

TrendRanges = dict[str, dict[str, list[tuple[float, float]]]]
RangeSeries = list[tuple[dict[str, str], list[tuple[float, float]]]]


def matrix(data: Any) -> RangeSeries:
    """``query_range``'s ``data`` as (labels, [(epoch s, value)]) per series; malformed points are skipped."""
    if not isinstance(data, dict) or data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
        raise ValueError(f"expected a matrix, got {data.get('resultType') if isinstance(data, dict) else data!r}")
    found: RangeSeries = []
    for item in data["result"]:
        labels, values = (item.get("metric"), item.get("values")) if isinstance(item, dict) else (None, None)
        if not isinstance(labels, dict) or not isinstance(values, list):
            continue
        points = []
        for pair in values:
            try:
                at, value = float(pair[0]), float(pair[1])
            except (IndexError, TypeError, ValueError):
                continue
            if not math.isnan(value):
                points.append((at, value))
        found.append(({str(k): str(v) for k, v in labels.items()}, points))
    return found


class PrometheusTrends:
    """The trends of every node ``source`` knows, kept between reads (see the module docstring)."""

    def __init__(
        self,
        source: PrometheusSource,
        *,
        span_seconds: float,
        step_seconds: float,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if span_seconds <= 0 or step_seconds <= 0:
            raise ValueError("span_seconds and step_seconds must be > 0")
        self.source = source
        self.span_seconds = span_seconds
        self.step_seconds = step_seconds
        self.clock = clock or (lambda: source.clock().timestamp())
        self._points: dict[str, dict[str, dict[float, float]]] = {}
        self._until: float | None = None

    async def read(self) -> TrendRanges:
        """Every node's points per metric, oldest first; ``ApiError`` when Prometheus does not answer."""
        now = self.clock()
        step = self.step_seconds
        oldest = now - self.span_seconds
        start = oldest if self._until is None else max(oldest, self._until - step)
        start = math.floor(start / step) * step  # on the grid: a later read's points land on the same instants
        gauges, derived = await asyncio.gather(
            self.source.api.query_range(GAUGE_RANGE_QUERY, start, now, step),
            self.source.api.query_range(self.source.derived, start, now, step),
        )
        for labels, points in gauges:
            metric = RANGE_GAUGES.get(labels.get("__name__", ""))
            if metric is not None:
                self._merge(labels, metric, points, 1.0)
        for labels, points in derived:
            found = DERIVED_METRICS.get(labels.get("drconsole_figure", ""))
            if found is not None:
                self._merge(labels, found[0], points, found[1])
        self._until = now
        for series in self._points.values():
            for metric, kept in series.items():
                series[metric] = {at: value for at, value in kept.items() if at >= oldest}
        return {
            name: {metric: sorted(points.items()) for metric, points in series.items() if points}
            for name, series in self._points.items()
        }

    def _merge(self, labels: Mapping[str, str], metric: str, points: list[tuple[float, float]], scale: float) -> None:
        name = self.source.node_name(labels)
        if name is None:
            return
        into = self._points.setdefault(name, {}).setdefault(metric, {})
        for at, value in points:
            into[at] = value * scale
