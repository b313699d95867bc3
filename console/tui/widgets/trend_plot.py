"""One metric of one node over time, with axes: the value scale on the left, the time below.

     write rate (/s)                           now 352 · low 120 · high 410
      410 ┤          ▂▄█▆▃
          │      ▁▃▅█████▇▅
        0 ┤▁▂▅███████████████
          └────────────────────
          -15m      -10m      -5m       now

Points are placed by their time in the window (``span_seconds`` ending at ``end``), so a gap in
the data (an unreachable node) is a gap on the plot, not squeezed away. Eight levels per row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from console.format import duration_text
from console.tui.widgets.text import line

__all__ = ["TrendPlot", "plot_lines"]

_LEVELS = "▁▂▃▄▅▆▇█"


def plot_lines(
    points: Sequence[tuple[float, float]],
    *,
    end: float,
    span_seconds: float,
    width: int,
    rows: int,
    label: Callable[[float], str],
    floor: float | None = 0.0,
) -> list[str]:
    """The plot as plain lines: ``rows`` of bars with the scale, the axis, the time labels."""
    scale_width = 7
    plot_width = max(4, width - scale_width - 2)
    start = end - span_seconds
    columns: list[list[float]] = [[] for _ in range(plot_width)]
    for at, value in points:
        if start <= at <= end:
            index = min(plot_width - 1, int((at - start) / span_seconds * plot_width))
            columns[index].append(value)
    means = [sum(column) / len(column) if column else None for column in columns]
    known = [value for value in means if value is not None]
    low = min(known) if known else 0.0
    if floor is not None:
        low = min(low, floor)
    high = max(known) if known else 1.0
    if high <= low:  # a flat line: its value on top, a tenth below it at the bottom (91 %, not 191 %)
        if high:
            low = high - abs(high) * 0.1
        else:
            high = low + 1.0
    levels = rows * 8
    heights = [None if value is None else max(1, round((value - low) / (high - low) * levels)) for value in means]
    lines = []
    for row in range(rows - 1, -1, -1):
        base = row * 8
        cells = "".join(
            " " if height is None or height <= base else ("█" if height >= base + 8 else _LEVELS[height - base - 1])
            for height in heights
        )
        scale = label(high) if row == rows - 1 else (label(low) if row == 0 else "")
        tick = "┤" if scale else "│"
        lines.append(f"{scale:>{scale_width}} {tick}{cells}")
    lines.append(" " * scale_width + " └" + "─" * plot_width)
    marks = [" "] * plot_width
    for fraction in (0.0, 1 / 3, 2 / 3):
        text = f"-{duration_text(span_seconds * (1 - fraction))}"
        at = int(fraction * plot_width)
        if at + len(text) <= plot_width - 4:
            marks[at : at + len(text)] = list(text)
    marks[plot_width - 3 :] = list("now")
    lines.append(" " * (scale_width + 2) + "".join(marks))
    return lines


class TrendPlot(Widget):
    """Set ``points`` (epoch seconds, value), ``end`` and ``span_seconds``; the title and unit at construction."""

    DEFAULT_CSS = """
    TrendPlot {
        height: 8;
        padding: 0 1;
    }
    """

    points: reactive[tuple[tuple[float, float], ...]] = reactive((), always_update=True)
    end: reactive[float] = reactive(0.0)
    current: reactive[str] = reactive("—")

    def __init__(
        self,
        title: str,
        label: Callable[[float], str],
        *,
        span_seconds: float,
        floor: float | None = 0.0,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.title = title
        self.label = label
        self.span_seconds = span_seconds
        self.floor = floor

    def render(self) -> Content:
        width = max(20, self.content_size.width)
        rows = max(1, self.content_size.height - 3)
        values = [value for _at, value in self.points]
        summary = (
            f"now {self.current} · low {self.label(min(values))} · high {self.label(max(values))}"
            if values
            else f"now {self.current} · no points yet"
        )
        head = line("[b]$title[/b]", title=self.title)
        room = width - head.cell_length - 1
        head += Content(" " * max(1, room - len(summary))) + line(
            "[dim]$summary[/dim]", summary=summary[: max(0, room)]
        )
        body = plot_lines(
            self.points,
            end=self.end,
            span_seconds=self.span_seconds,
            width=width,
            rows=rows,
            label=self.label,
            floor=self.floor,
        )
        return Content("\n").join([head, *(Content(text) for text in body)])
