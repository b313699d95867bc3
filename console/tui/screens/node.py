"""One node's trends, plotted with axes: disk (with time-to-full), request rates, p95 latency, errors,
replication lag and memory over the history the console keeps (``fleet.history``).

Opened with ``t`` on a card (or "Node trends" in the palette); ``escape`` goes back to the Overview,
``enter`` triages the node. The plots change once per closed bucket (5 s by default), not per tick.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, VerticalScroll
from textual.widgets import Static

from console.format import (
    bytes_text,
    coarse_duration_text,
    health_markup,
    percent_text,
    rate_text,
    shown_health,
    upstream_name,
)
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.key_bar import KeyBar
from console.tui.widgets.text import line
from console.tui.widgets.trend_plot import TrendPlot
from fleet import NodeSnapshot
from fleet.history import TREND_METRICS

__all__ = ["NodeScreen"]


def _ms(value: float) -> str:
    return f"{value:.0f}ms" if value >= 1 else f"{value:.1f}ms"


def _label(unit: str) -> Callable[[float], str]:
    if unit == "ratio":
        return percent_text
    if unit == "ms":
        return _ms
    if unit == "s":
        return lambda value: coarse_duration_text(value) if value >= 60 else f"{value:.0f}s"
    # Small rates (errors) keep two significant digits: 0.014/s is not "0".
    return lambda value: rate_text(value) if value >= 10 or value == 0 else f"{value:.2g}"


def _current(metric: str, node: NodeSnapshot) -> str:
    performance, replication = node.performance, node.replication
    values = {
        "disk_ratio": percent_text(node.disk.usage_ratio),
        "memory_ratio": percent_text(node.memory.usage_ratio),
        "write_rate": f"{rate_text(performance.write_ops_per_second)}/s",
        "read_rate": f"{rate_text(performance.read_ops_per_second)}/s",
        "write_p95": "—" if performance.write_p95_ms is None else _ms(performance.write_p95_ms),
        "read_p95": "—" if performance.read_p95_ms is None else _ms(performance.read_p95_ms),
        "error_rate": "—"
        if performance.error_rate_per_second is None
        else f"{performance.error_rate_per_second:.2f}/s",
        "lag_seconds": "—" if replication.lag_seconds is None else f"{replication.lag_seconds:.0f}s",
    }
    return values.get(metric, "—") if node.reachable else "—"


class NodeScreen(ConsoleScreen):
    """The selected node's trends; nothing to act on here but going back or triaging it."""

    SCREEN_LABEL = "Node"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "app.show_screen('triage')", "Triage"),
        Binding("escape", "app.show_screen('overview')", "Back"),
    ]
    """
    | Key(s) | Description |
    | :- | :- |
    | enter | Triage this node. |
    | escape | Back to the Overview. |
    | up/down, pgup/pgdn | Scroll the plots. |
    """

    def compose(self) -> ComposeResult:
        yield self.status_bar()
        yield Static(id="node-title")
        with VerticalScroll(id="node-scroll"):
            with Grid(id="node-plots"):
                span = self.console.history.span_seconds
                for metric, label, unit in TREND_METRICS:
                    title = {"ratio": f"{label} (%)", "ms": f"{label} (ms)", "s": f"{label} (s)"}.get(
                        unit, f"{label} ({unit})"
                    )
                    yield TrendPlot(
                        title,
                        _label(unit),
                        span_seconds=span,
                        floor=None if metric == "disk_ratio" else 0.0,
                        id=f"plot-{metric}",
                    )
        yield KeyBar()

    def on_mount(self) -> None:
        super().on_mount()
        self._plots = {metric: self.query_one(f"#plot-{metric}", TrendPlot) for metric, _label, _unit in TREND_METRICS}
        self._shown_revision: tuple[str | None, int] | None = None
        self.watch(self.console, "snapshot", self._show_if_current, init=False)
        self.watch(self.console, "selected_node", self._show_if_current, init=False)
        self._show()

    def on_screen_resume(self) -> None:
        self._shown_revision = None
        self._show()

    def on_resize(self) -> None:
        width = self.size.width
        grid = self.query_one("#node-plots", Grid)
        columns = 2 if width >= 120 else 1
        if grid.styles.grid_size_columns != columns:
            grid.styles.grid_size_columns = columns

    def _window(self, name: str) -> str:
        history = self.console.history
        if history.bucket_seconds:
            return f"last {coarse_duration_text(history.span_seconds)} kept"
        return f"last {len(history.points(name, 'disk_ratio'))} readings"

    def _span(self, name: str, end: float) -> float:
        """The plots' time window: what the history keeps; for a replayed recording (one point per
        reading, no refresh clock) the time its readings cover, so ten readings are not one column."""
        history = self.console.history
        if history.bucket_seconds:
            return history.span_seconds
        points = history.points(name, "disk_ratio")
        covered = end - points[0][0] if points else 0.0
        return max(10.0, covered * 1.1)

    def _show_if_current(self) -> None:
        if self.is_current:
            self._show()

    def _show(self) -> None:
        console = self.console
        name, snapshot = console.selected_node, console.snapshot
        node = snapshot.node(name) if snapshot is not None and name is not None else None
        title = self.query_one("#node-title", Static)
        if node is None or snapshot is None:
            title.update(line("[dim]no node selected: pick one on the Overview (1)[/dim]"))
            return
        history = console.history
        ttf = history.time_to_full(node.name)
        disk = node.disk
        sizes = (
            f" ({bytes_text(disk.volume_used_bytes)} of {bytes_text(disk.volume_total_bytes)})"
            if disk.volume_used_bytes is not None and disk.volume_total_bytes
            else ""
        )
        role = node.role if node.role != "standby" else f"standby of {upstream_name(node, snapshot) or '?'}"
        title.update(
            line(
                f"[b]$name[/b] · $engine · $role · {health_markup(shown_health(node, console.thresholds))}"
                " · disk $disk$sizes$ttf · [dim]$window[/dim]",
                name=node.name,
                engine=node.engine or "?",
                role=role,
                disk=percent_text(disk.usage_ratio),
                sizes=sizes,
                ttf=f", full in ~{coarse_duration_text(ttf)}" if ttf is not None else "",
                window=self._window(node.name),
            )
        )
        revision = (node.name, history.revision(node.name))
        end = snapshot.taken_at.timestamp()
        span = self._span(node.name, end)
        for metric, plot in self._plots.items():
            plot.current = _current(metric, node)
            if revision != self._shown_revision:
                plot.span_seconds = span
                plot.end = end
                plot.points = tuple(history.points(node.name, metric))
        self._shown_revision = revision
