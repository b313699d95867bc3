"""A node on the wall-screen dashboard: its status in large type and the three figures that matter."""

from __future__ import annotations

from datetime import tzinfo

from textual.content import Content

from console.bigfont import big_rows, big_width
from console.format import HEALTH_STYLE, clock_text, duration_text, percent_text, severity_markup
from console.widgets.node_lines import NodeLines, corruption_text
from console.widgets.text import line
from playbooks.fleet import NodeSnapshot

__all__ = ["FleetTile"]


class FleetTile(NodeLines):
    """Not focusable and without bindings: the dashboard offers no action at all.

    Like the Overview's cards, a tick redraws only the lines that changed.
    """

    LINES = 12

    def __init__(self, node_name: str, *, tz: tzinfo | None = None, id: str | None = None) -> None:
        super().__init__(node_name, tz=tz, id=id)

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
        where = corruption_text(node, width)
        if where:
            lines.append(line(f"[b ${variable}]$where[/]", where=where))
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
