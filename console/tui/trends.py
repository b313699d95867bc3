"""The trends a node's widgets draw, read from the app's ``FleetHistory`` once per closed bucket.

    trends = TrendReader(app.history)
    card.trends = trends.of("orders-a")      # the same object until a bucket closes: no redraw between

``Trends`` holds each metric's recent values (``fleet.history.TREND_METRICS``) and the
disk's time-to-full; the Overview's cards, the dashboard's tiles and the node screen's plots share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from console.format import duration_text
from fleet import FleetHistory
from fleet.history import TREND_METRICS

__all__ = ["TrendReader", "Trends"]


@dataclass(frozen=True)
class Trends:
    """One node's recent values per metric, oldest first, and its disk's time-to-full (seconds)."""

    series: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    time_to_full_seconds: float | None = None
    bucket_seconds: float = 0.0  # one point per bucket of this many seconds (0: one per reading)

    def of(self, metric: str) -> tuple[float, ...]:
        return self.series.get(metric, ())

    def window_text(self) -> str:
        """What the points cover, in words: "last 4m35s", "last 12 readings", "no trend yet"."""
        points = max((len(values) for values in self.series.values()), default=0)
        if not points:
            return "no trend yet"
        if not self.bucket_seconds:
            return f"last {points} readings"
        return f"last {duration_text(points * self.bucket_seconds)}"


class TrendReader:
    """Builds a node's ``Trends`` when its history moved on (``FleetHistory.revision``), else returns the last."""

    def __init__(self, history: FleetHistory) -> None:
        self.history = history
        self._built: dict[str, tuple[int, Trends]] = {}

    def of(self, name: str) -> Trends:
        revision = self.history.revision(name)
        built = self._built.get(name)
        if built is not None and built[0] == revision:
            return built[1]
        history = self.history
        trends = Trends(
            {metric: tuple(history.series(name, metric)) for metric, _label, _unit in TREND_METRICS},
            history.time_to_full(name),
            history.bucket_seconds,
        )
        self._built[name] = (revision, trends)
        return trends
