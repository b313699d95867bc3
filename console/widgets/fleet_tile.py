"""A node on the wall-screen dashboard: its status in large type and the three figures that matter."""

from __future__ import annotations

from datetime import datetime, tzinfo

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from console.bigfont import big_rows, big_width
from console.format import HEALTH_STYLE, clock_text, duration_text, percent_text, severity_markup
from console.widgets.text import line
from playbooks.fleet import NodeSnapshot

__all__ = ["FleetTile"]


class FleetTile(Widget):
    """Not focusable and without bindings: the dashboard offers no action at all."""

    node: reactive[NodeSnapshot | None] = reactive(None)
    now: reactive[datetime | None] = reactive(None)

    def __init__(self, node_name: str, *, tz: tzinfo | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.node_name = node_name
        self.tz = tz
        self.border_title = node_name

    def watch_node(self, node: NodeSnapshot | None) -> None:
        if node is not None:
            self.border_title = f"{node.name} · {node.engine or '?'} · {node.role}"
            for health in ("ok", "degraded", "down", "unknown"):
                self.set_class(node.health.value == health, f"-{health}")

    def render(self) -> Content:
        node = self.node
        width = max(10, self.content_size.width)
        if node is None:
            return line("[$status-unknown]? UNKNOWN[/]")
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
                lines.append(line("backup [b]$age[/b] ago", age=duration_text(age)))
        for alert in node.alerts[:2]:
            lines.append(line(f"{severity_markup(alert.severity)} $message", message=alert.message))
        return Content("\n").join(lines[: max(1, height)])
