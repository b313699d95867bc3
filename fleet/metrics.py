"""Reading a node's ``GET /metrics`` (Prometheus text format) into what the panes need.

``parse_metrics`` keeps the drconsole series by name; ``histogram_quantile`` interpolates a
quantile from cumulative buckets the way Prometheus' ``histogram_quantile`` does; and
``MetricsTracker`` turns successive readings into the p95 of the requests between the last two,
the requests served per second between them (each latency histogram's count), and the error rate
over a window (``rate(...[2m])``): a rate from one scrape to the next jumps
with every burst of retries, and an alert on it fires and clears by the second.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "MetricsReading",
    "MetricsTracker",
    "Rates",
    "histogram_quantile",
    "parse_metrics",
    "WRITE_LATENCY",
    "READ_LATENCY",
    "ERRORS_TOTAL",
    "DEFAULT_RATE_WINDOW_SECONDS",
]

WRITE_LATENCY = "drconsole_write_latency_seconds"
READ_LATENCY = "drconsole_read_latency_seconds"
ERRORS_TOTAL = "drconsole_operation_errors_total"

Buckets = tuple[tuple[float, float], ...]  # (upper bound, cumulative count), sorted; +Inf last


@dataclass(frozen=True)
class MetricsReading:
    """The samples of one scrape: plain values by name (labels summed) and histograms."""

    values: dict[str, float] = field(default_factory=dict)
    histograms: dict[str, Buckets] = field(default_factory=dict)

    def get(self, name: str) -> float | None:
        return self.values.get(name)


def parse_metrics(text: str) -> MetricsReading:
    """Parse Prometheus text; raises ``ValueError`` on text that is not in that format."""
    values: dict[str, float] = {}
    buckets: dict[str, dict[float, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, float(sample.value)
            if name.endswith("_bucket") and "le" in labels:
                bound = math.inf if labels["le"] in ("+Inf", "Inf") else float(labels["le"])
                series = buckets.setdefault(name.removesuffix("_bucket"), {})
                series[bound] = series.get(bound, 0.0) + value
            else:
                values[name] = values.get(name, 0.0) + value
    histograms = {name: tuple(sorted(series.items())) for name, series in buckets.items()}
    return MetricsReading(values=values, histograms=histograms)


def histogram_quantile(quantile: float, buckets: Buckets) -> float | None:
    """The ``quantile`` (0..1) of cumulative ``buckets``, linearly interpolated; None when empty."""
    if not buckets:
        return None
    total = buckets[-1][1]
    if total <= 0:
        return None
    rank = quantile * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # Prometheus answers the highest finite bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def _delta(current: Buckets, previous: Buckets | None) -> Buckets:
    if previous is None:
        return current
    before = dict(previous)
    delta = tuple((bound, count - before.get(bound, 0.0)) for bound, count in current)
    if any(count < 0 for _bound, count in delta):  # the node restarted: counters began again
        return current
    return delta


@dataclass(frozen=True)
class Rates:
    write_p95_ms: float | None
    read_p95_ms: float | None
    error_rate_per_second: float | None
    errors_total: float | None
    write_ops_per_second: float | None = None
    read_ops_per_second: float | None = None


DEFAULT_RATE_WINDOW_SECONDS = 120.0


class MetricsTracker:
    """Remembers the scrapes of one node: p95 between the last two, errors/s over ``window_seconds``.

    The error rate spans the readings of the last ``window_seconds`` (until the window fills, all
    of them since the first). A counter that went down means the node restarted: the window
    starts again there.
    """

    def __init__(self, window_seconds: float = DEFAULT_RATE_WINDOW_SECONDS) -> None:
        self.window_seconds = window_seconds
        self._previous: MetricsReading | None = None
        self._previous_at: float | None = None
        self._errors: deque[tuple[float, float]] = deque()

    def update(self, reading: MetricsReading, at: float) -> Rates:
        previous, previous_at = self._previous, self._previous_at
        self._previous, self._previous_at = reading, at

        def p95_ms(name: str) -> float | None:
            current = reading.histograms.get(name)
            if current is None:
                return None
            before = previous.histograms.get(name) if previous is not None else None
            delta = _delta(current, before)
            if delta and delta[-1][1] <= 0:
                return None  # no requests since the previous scrape
            value = histogram_quantile(0.95, delta)
            return None if value is None else value * 1000

        def per_second(name: str) -> float | None:
            # A latency histogram counts every request it timed: its _count is the requests served.
            current = reading.histograms.get(name)
            before = previous.histograms.get(name) if previous is not None else None
            if current is None or before is None or previous_at is None or at <= previous_at:
                return None
            served = current[-1][1] - before[-1][1]
            return None if served < 0 else served / (at - previous_at)  # < 0: the node restarted

        errors = reading.get(ERRORS_TOTAL)
        return Rates(
            write_p95_ms=p95_ms(WRITE_LATENCY),
            read_p95_ms=p95_ms(READ_LATENCY),
            error_rate_per_second=self._error_rate(errors, at),
            errors_total=errors,
            write_ops_per_second=per_second(WRITE_LATENCY),
            read_ops_per_second=per_second(READ_LATENCY),
        )

    def _error_rate(self, errors: float | None, at: float) -> float | None:
        window = self._errors
        if errors is None:
            return None
        if window and (errors < window[-1][1] or at <= window[-1][0]):
            window.clear()  # a restart (the counter began again), or a clock that went back
        window.append((at, errors))
        while len(window) > 2 and at - window[1][0] >= self.window_seconds:
            window.popleft()  # keep one reading at the window's edge, so the span is the window
        first_at, first = window[0]
        if len(window) < 2:
            return None
        return (errors - first) / (at - first_at)
