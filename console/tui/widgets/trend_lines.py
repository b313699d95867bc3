"""A node's trends as labelled bar charts, under the figures of a dashboard tile or an Overview card.

    ── last 15m ──────────────────────────
    disk    ▁▁▂▂▃▃▄▄▅▅▆▆▇            61%
    writes  ▁▂▃▅▇█▇▅▃▂▁▂▃           350/s

Each chart is as tall as the room allows (up to ``max_rows``); the figure beside it is its newest point.
"""

from __future__ import annotations

from textual.content import Content

from console.format import duration_text, percent_text, rate_text, spark_rows
from console.tui.trends import Trends
from console.tui.widgets.text import line, spread
from fleet import NodeSnapshot

__all__ = ["TILE_TRENDS", "trend_lines"]

# The trends under a tile, most telling first: (metric, label).
TILE_TRENDS: tuple[tuple[str, str], ...] = (
    ("disk_ratio", "disk"),
    ("write_rate", "writes"),
    ("write_p95", "p95 wr"),
    ("lag_seconds", "lag"),
    ("error_rate", "errors"),
    ("read_rate", "reads"),
    ("read_p95", "p95 rd"),
    ("memory_ratio", "memory"),
)


def _latest(metric: str, node: NodeSnapshot) -> float | None:
    performance, replication = node.performance, node.replication
    return {
        "disk_ratio": node.disk.usage_ratio,
        "memory_ratio": node.memory.usage_ratio,
        "write_rate": performance.write_ops_per_second,
        "read_rate": performance.read_ops_per_second,
        "write_p95": performance.write_p95_ms,
        "read_p95": performance.read_p95_ms,
        "error_rate": performance.error_rate_per_second,
        "lag_seconds": replication.lag_seconds,
    }.get(metric)


def _value_text(metric: str, value: float | None) -> str:
    if value is None:
        return "—"
    if metric in ("disk_ratio", "memory_ratio"):
        return percent_text(value)
    if metric in ("write_rate", "read_rate"):
        return f"{rate_text(value)}/s"
    if metric in ("write_p95", "read_p95"):
        return f"{value:.0f}ms"
    if metric == "error_rate":
        return f"{value:.2f}/s"
    return duration_text(value)


def trend_lines(
    trends: Trends, node: NodeSnapshot, width: int, room: int, *, standby: bool, max_rows: int = 4
) -> list[Content]:
    """The trends in ``room`` lines: as many charts as fit, each as tall as the room allows (none under 3 lines)."""
    shown = [
        (metric, label)
        for metric, label in TILE_TRENDS
        if (metric != "lag_seconds" or standby) and (node.reachable or trends.of(metric))
    ]
    if room < 3 or not shown:
        return []
    shown = shown[: room - 1]
    # Taller charts only once there is something to chart: empty rows would read as a flat zero.
    charted = any(trends.of(metric) for metric, _ in shown)
    rows = max(1, min(max_rows, (room - 1) // len(shown))) if charted else 1
    title = trends.window_text() + ("" if node.reachable else " before it went down")
    lines = [line("[dim]── $title $rule[/dim]", title=title, rule="─" * max(0, width - len(title) - 4))]
    label_width = max(len(label) for _metric, label in shown) + 1
    spark_width = max(4, width - label_width - 9)
    for metric, label in shown:
        # The figure beside a trend is its newest point, so the row moves once per bucket as the
        # sparkline does, not on every tick (the live figures are in the lines above); a
        # recording replayed without buckets shows the reading itself.
        points = trends.of(metric)
        newest = points[-1] if points and trends.bucket_seconds else _latest(metric, node)
        value = _value_text(metric, newest) if node.reachable else "—"
        floor = 0.0 if metric != "disk_ratio" else None  # rates and latencies from zero; disk from its low
        chart = spark_rows(points, spark_width, rows, floor=floor)
        for index, row in enumerate(chart):
            if index < len(chart) - 1:
                lines.append(line("[dim]$label[/dim]", label="".ljust(label_width)) + Content(row))
                continue
            left = line("[dim]$label[/dim]", label=label.ljust(label_width)) + Content(row)
            lines.append(spread(left, line("[b]$value[/b]", value=value.rjust(7)), width))
    return lines
