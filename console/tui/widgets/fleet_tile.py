"""A node on the wall-screen dashboard: its status in large type, the figures that matter, its trends.

    ✔  ┏━┓╻ ╻                         (the status word, three rows high when it fits)
       ┃ ┃┣┳┛
       ┗━┛╹┗╸
    primary · epoch 3 · lsn 1,204,000
    disk 61 % ██████░░░░ 120G/200G · full in ~6m
    backup 3h12m ago ✔ verified
    ── last 15 min ──────────────
    disk    ▁▁▂▂▃▃▄▄▅▅▆▆▇   61%
    writes  ▁▂▃▅▇█▇▅▃▂▁▂▃   350/s
    ...

Alerts are not repeated here: the dashboard lists them once, in its alert strip. A standby shows
its lag (a lagging one reads "▲ LAGGING", never "✔ OK"); a primary shows none.
"""

from __future__ import annotations

from textual.content import Content

from console.format import (
    bar,
    bytes_text,
    clock_text,
    coarse_duration_text,
    count_text,
    duration_text,
    lagging_seconds,
    percent_text,
    shown_health,
)
from console.tui.bigfont import big_rows, big_width
from console.tui.widgets.node_lines import NodeLines, corruption_text
from console.tui.widgets.text import line
from console.tui.widgets.trend_lines import trend_lines
from fleet import NodeSnapshot

__all__ = ["FleetTile"]


class FleetTile(NodeLines):
    """Not focusable and without bindings: the dashboard offers no action at all.

    Like the Overview's cards, a tick redraws only the lines that changed.
    """

    def render_text(self) -> str:
        return "\n".join(content.plain for content in self._render_lines())

    def _render_lines(self) -> list[Content]:
        node = self.node
        width = max(10, self.content_size.width)
        height = max(1, self.content_size.height)
        if node is None:
            return [line("[$status-unknown]? UNKNOWN[/] waiting for the first refresh")]
        lines = self._status(node, width, height)
        if not node.reachable:
            since = node.unreachable_since
            down = f" ({coarse_duration_text((self.now - since).total_seconds())})" if since and self.now else ""
            lines.append(line("unreachable since [b]$since[/b]$down", since=clock_text(since, self.tz), down=down))
            lines.append(line("[dim]$reason[/dim]", reason=node.health_reason))
            lines.append(self._role(node, width))
            lag: Content | None = None
        else:
            lines.append(self._role(node, width))
            lag = self._lag(node)
            if lag is not None:
                lines.append(lag)
            lines.append(self._disk(node, width))
            lines.append(self._backup(node))
        lines += trend_lines(self.trends, node, width, height - len(lines), standby=lag is not None)
        return lines[:height]

    def _status(self, node: NodeSnapshot, width: int, height: int) -> list[Content]:
        symbol, word, variable = shown_health(node, self.thresholds)
        rows = big_rows(word)
        lines: list[Content] = []
        if rows is not None and big_width(word) + 4 <= width and height >= 8:
            lines += [
                line(
                    f"[b ${variable}]{symbol}[/]  [b ${variable}]$row[/]"
                    if index == 1
                    else f"   [b ${variable}]$row[/]",
                    row=row,
                )
                for index, row in enumerate(rows)
            ]
        else:
            lines.append(line(f"[b ${variable}]{symbol} {word}[/]"))
        where = corruption_text(node, width)
        if where:
            lines.append(line(f"[b ${variable}]$where[/]", where=where))
        return lines

    def _role(self, node: NodeSnapshot, width: int) -> Content:
        """Role, epoch and LSN; when short of room the epoch shrinks ("e3"), then goes: the LSN stays."""
        role = node.role
        if role == "standby":
            role = f"standby of {self.upstream or node.replication.upstream or '?'}"
        epochs = ("", "") if node.epoch is None else (f" · epoch {node.epoch}", f" · e{node.epoch}", "")
        for epoch in epochs:
            text = line("[b]$role[/b]$epoch · lsn $lsn", role=role, epoch=epoch, lsn=count_text(node.last_lsn))
            if text.cell_length <= width:
                return text
        return text.truncate(width, ellipsis=True)

    def _lag(self, node: NodeSnapshot) -> Content | None:
        """A standby's lag (warned past the threshold); None for a primary: it has no lag to show."""
        replication = node.replication
        if node.role != "standby" and replication.upstream is None:
            return None
        seconds = replication.lag_seconds
        state = "status-warn" if lagging_seconds(node, self.thresholds) is not None else "status-ok"
        return line(
            f"lag [b ${state}]$seconds[/] · $records records · $bytes behind",
            seconds="—" if seconds is None else duration_text(seconds),
            records=count_text(replication.lag_records),
            bytes=bytes_text(replication.lag_bytes),
        )

    def _disk(self, node: NodeSnapshot, width: int) -> Content:
        disk = node.disk
        crit = any(alert.rule == "disk-usage" for alert in node.alerts)
        state = "status-crit" if crit else "status-ok"
        sizes = (
            f" {bytes_text(disk.volume_used_bytes)}/{bytes_text(disk.volume_total_bytes)}"
            if disk.volume_used_bytes is not None and disk.volume_total_bytes
            else ""
        )
        ttf = self.trends.time_to_full_seconds
        full = f" · full in ~{coarse_duration_text(ttf)}" if ttf is not None else ""
        return line(
            f"disk [b ${state}]$percent[/] $bar$sizes$full",
            percent=percent_text(disk.usage_ratio),
            bar=bar(disk.usage_ratio, 10 if width >= 40 else 5),
            sizes=sizes,
            full=full,
        )

    def _backup(self, node: NodeSnapshot) -> Content:
        backup = node.backup
        age = backup.age_seconds(self.now) if self.now else None
        if backup.last_backup_at is None or age is None:
            return line("backup [b $status-warn]▲ none[/] [dim]$why[/dim]", why=backup.error or "")
        verified = {
            True: "[$status-ok]✔ verified[/]",
            False: "[$status-warn]▲ unverified[/]",
            None: "[$status-unknown]? unknown[/]",
        }[backup.verified]
        return line(f"backup [b]$age[/b] ago {verified}", age=duration_text(age))
