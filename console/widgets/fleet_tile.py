"""A node on the wall-screen dashboard: its status in large type and the three figures that matter."""

from __future__ import annotations

from datetime import datetime, tzinfo

from textual.content import Content
from textual.geometry import Region, Size
from textual.reactive import var
from textual.widget import Widget

from console.bigfont import big_rows, big_width
from console.format import HEALTH_STYLE, clock_text, duration_text, percent_text, severity_markup
from console.widgets.text import changed_lines
from console.widgets.text import line
from playbooks.fleet import NodeSnapshot

__all__ = ["FleetTile"]


class FleetTile(Widget):
    """Not focusable and without bindings: the dashboard offers no action at all.

    Like the Overview's cards, a tick redraws only the lines that changed.
    """

    LINES = 12

    # ``var``: the tile itself is never repainted; its lines are, and only those that changed.
    node: var[NodeSnapshot | None] = var(None)
    now: var[datetime | None] = var(None)

    def __init__(self, node_name: str, *, tz: tzinfo | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.node_name = node_name
        self.tz = tz
        self.border_title = self._title = node_name
        self._pending = False
        self._shown: list[Content] = []
        self._shown_size: Size | None = None


    def watch_node(self, node: NodeSnapshot | None) -> None:
        if node is not None:
            title = f"{node.name} · {node.engine or '?'} · {node.role}"
            if title != self._title:  # setting a border title repaints the whole tile
                self._title = self.border_title = title
            for health in ("ok", "degraded", "down", "unknown"):
                self.set_class(node.health.value == health, f"-{health}")
        self._schedule()

    def watch_now(self) -> None:
        self._schedule()

    def on_resize(self) -> None:
        self._schedule()

    def _schedule(self) -> None:
        if not self._pending and self.is_mounted:
            self._pending = True
            self.call_later(self._show)

    def _show(self) -> None:
        self._pending = False
        lines = self._render_lines()
        changed = changed_lines(self._shown, lines)
        resized = self.content_size != self._shown_size
        self._shown, self._shown_size = lines, self.content_size
        if changed is None or resized:
            self.refresh()
        elif changed:
            # Only the lines whose text changed are redrawn and sent to the terminal.
            width = self.content_size.width
            self.refresh(*(Region(0, y, width, 1) for y in changed))

    def render(self) -> Content:
        return Content("\n").join(self._shown)

    def render_text(self) -> str:
        return "\n".join(content.plain for content in self._render_lines())

    def _render_lines(self) -> list[Content]:
        node = self.node
        width = max(10, self.content_size.width)
        if node is None:
            return [line("[$status-unknown]? UNKNOWN[/]")]
        symbol, word, variable = HEALTH_STYLE[node.health]
        lines: list[Content] = []
        rows = big_rows(word)
        height = self.content_size.height
        if rows is not None and big_width(word) + 4 <= width and height >= 5:
            lines += [line(f"[b ${variable}]{symbol}[/]  [b ${variable}]$row[/]" if index == 1 else
                           f"   [b ${variable}]$row[/]", row=row) for index, row in enumerate(rows)]
        else:
            lines.append(line(f"[b ${variable}]{symbol} {word}[/]"))
        if not node.reachable:
            since = node.unreachable_since
            lines.append(line("unreachable since [b]$since[/b]", since=clock_text(since, self.tz)))
        else:
            lag = node.replication.lag_seconds
            lines.append(line("disk [b]$disk[/b]  mem [b]$mem[/b]  lag [b]$lag[/b]",
                              disk=percent_text(node.disk.usage_ratio), mem=percent_text(node.memory.usage_ratio),
                              lag="—" if lag is None else duration_text(lag)))
            if height - len(lines) > len(node.alerts[:2]):
                age = node.backup.age_seconds(self.now) if self.now else None
                lines.append(line("backup [b]$age[/b] ago", age=duration_text(age)) if age is not None
                             else line("backup [b $status-warn]▲ none[/]"))
        for alert in node.alerts[:2]:
            lines.append(line(f"{severity_markup(alert.severity)} $message", message=alert.message))
        return lines[: max(1, height)]
