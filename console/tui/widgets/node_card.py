"""One node's card on the Overview: health, role/epoch, disk, memory, replication, backup, alerts."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.content import Content

from console.format import (
    bar,
    bytes_text,
    clock_text,
    coarse_duration_text,
    count_text,
    duration_text,
    health_markup,
    lagging_seconds,
    percent_text,
    rate_text,
    severity_markup,
    shown_health,
    sparkline,
)
from console.tui.messages import NodeSelected
from console.tui.widgets.node_lines import NodeLines, corruption_text
from console.tui.widgets.text import line, spread
from console.tui.widgets.trend_lines import trend_lines
from fleet import NodeSnapshot

__all__ = ["NodeCard", "MAX_LINES"]

MAX_LINES = 16


class NodeCard(NodeLines, can_focus=True):
    """A node at a glance; focus it to select the node, enter triages it, t opens its trends.

    The card shows more as it gets more room (performance, request rates, errors, components of the
    disk, address), each figure with its sparkline on the right. It is one widget whose changed lines
    only are redrawn: a tick sends the terminal what changed, no more.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "activate", "Triage", tooltip="Triage this node"),
        Binding("t", "trends", "Trends", tooltip="This node's trends, plotted"),
    ]
    """
    | Key(s) | Description |
    | :- | :- |
    | enter | Triage this node (opens an incident if none is open). |
    | t | This node's trends: disk, request rates, latency, errors, lag, memory, plotted over time. |
    """

    def _title(self, node: NodeSnapshot) -> str:
        title = super()._title(node)
        return title if node.epoch is None else f"{title} · e{node.epoch}"

    def on_focus(self) -> None:
        self.post_message(NodeSelected(self.node_name))

    def action_activate(self) -> None:
        self.post_message(NodeSelected(self.node_name, activate=True))

    def action_trends(self) -> None:
        self.post_message(NodeSelected(self.node_name, screen="node"))

    def on_click(self) -> None:
        self.focus()

    # ---------------------------------------------------------------- rendering
    def _render_lines(self) -> list[Content]:
        node = self.node
        width = max(10, self.content_size.width)
        height = max(1, self.content_size.height)
        if node is None:
            return [line("[$status-unknown]? UNKNOWN[/] waiting for the first refresh")]
        return self._lines(node, width, height)[:height]

    def render_text(self) -> str:
        """The card's text, one line per line (for tests and logs)."""
        return "\n".join(content.plain for content in self._render_lines())

    def _lines(self, node: NodeSnapshot, width: int, height: int) -> list[Content]:
        now = self.now
        lines: list[Content] = []
        if not node.reachable:
            since = node.unreachable_since
            down_for = f" ({coarse_duration_text((now - since).total_seconds())})" if since and now else ""
            lines.append(
                line(
                    f"{health_markup(node.health)} unreachable since $since$for",
                    since=clock_text(since, self.tz),
                    **{"for": down_for},
                )
                if width >= 44
                else line(
                    f"{health_markup(node.health)} since $since$for",
                    since=clock_text(since, self.tz),
                    **{"for": down_for},
                )
            )
            lines.append(line("[dim]$reason[/dim]", reason=node.health_reason))
            lines.append(self._role_line(node, width))
            lines.append(line("[dim]no figures while unreachable[/dim]"))
            alerts = self._alert_lines(node, max(1, height - len(lines)))
            room = height - len(lines) - len(alerts)
            return lines + trend_lines(self.trends, node, width, room, standby=False) + alerts
        lines.append(self._health_line(node, width))
        lines.append(self._role_line(node, width))
        lines.append(self._disk_line(node, width))
        lines.append(self._memory_line(node, width))
        lines.append(self._replication_line(node, width))
        lines.append(self._backup_line(node, width))
        alerts = self._alert_lines(node, max(1, height - len(lines)))
        # What more room shows, most useful first; drawn in this order between the figures and the alerts.
        extras = [
            found
            for found in (
                self._performance_line(node, width),
                self._rates_line(node, width),
                self._reads_line(node, width),
                self._errors_line(node, width),
                self._components_line(node),
                line(
                    "[dim]$address$peers[/dim]",
                    address=node.address or node.source,
                    peers=f" · peers {', '.join(node.peers)}" if node.peers else "",
                ),
            )
            if found is not None
        ]
        room = max(0, height - len(lines) - len(alerts))
        # Room left over (a tall card on a wall screen): the trends as charts, under the figures.
        charts = trend_lines(self.trends, node, width, room - len(extras), standby=node.role == "standby")
        return lines + extras[:room] + charts + alerts

    def _health_line(self, node: NodeSnapshot, width: int) -> Content:
        """The state and why; for a corrupt node, where the damage is (file and offset) and what found it."""
        where = corruption_text(node, width - 10)
        if not where:
            behind = lagging_seconds(node, self.thresholds)
            if behind is not None:
                return line(
                    f"{health_markup(shown_health(node, self.thresholds))} $behind behind $upstream",
                    behind=duration_text(behind),
                    upstream=self.upstream or "its primary",
                )
            return line(f"{health_markup(node.health)} $reason", reason=node.health_reason)
        found = node.corruption
        assert found is not None
        detail = found.detail.removeprefix(f"{found.file}: ")
        how = f" · {found.found_by}: {detail}" if found.found_by else f" · {detail}"
        return line(f"{health_markup(node.health)} $where[dim]$how[/dim]", where=where, how=how).truncate(
            width, ellipsis=True
        )

    def _spark(self, metric: str, width: int) -> str:
        return sparkline(self.trends.of(metric), self._spark_width(width))

    def _performance_line(self, node: NodeSnapshot, width: int) -> Content:
        performance = node.performance

        def ms(value: float | None) -> str:
            return "—" if value is None else f"{value:.0f}ms"

        return spread(
            line(
                "p95  write $write · read $read", write=ms(performance.write_p95_ms), read=ms(performance.read_p95_ms)
            ),
            self._spark("write_p95", width),
            width,
        )

    def _rates_line(self, node: NodeSnapshot, width: int) -> Content | None:
        performance = node.performance
        if performance.write_ops_per_second is None and performance.read_ops_per_second is None:
            return None  # a source that does not count requests (a data dir read locally)
        return spread(
            line("ops  $writes writes/s", writes=rate_text(performance.write_ops_per_second)),
            self._spark("write_rate", width),
            width,
        )

    def _reads_line(self, node: NodeSnapshot, width: int) -> Content | None:
        if node.performance.read_ops_per_second is None and not self.trends.of("read_rate"):
            return None
        return spread(
            line("     $reads reads/s", reads=rate_text(node.performance.read_ops_per_second)),
            self._spark("read_rate", width),
            width,
        )

    def _errors_line(self, node: NodeSnapshot, width: int) -> Content:
        errors = node.performance.error_rate_per_second
        state = "status-warn" if node_alert(node, "error-rate") else "status-ok"
        total = node.performance.errors_total
        return spread(
            line(
                f"err  [${state}]$rate/s[/]$total",
                rate="—" if errors is None else f"{errors:.2f}",
                total="" if total is None else f" · {total:,.0f} since start",
            ),
            self._spark("error_rate", width),
            width,
        )

    def _role_line(self, node: NodeSnapshot, width: int) -> Content:
        role = node.role
        if node.replication.upstream and role == "standby":
            role = f"standby of {self.upstream or node.replication.upstream}"
        text = line("[dim]$role · lsn $lsn[/dim]", role=role, lsn=count_text(node.last_lsn))
        if node.total_keys is not None and text.cell_length + len(count_text(node.total_keys)) + 8 <= width:
            text += line("[dim] · $keys keys[/dim]", keys=count_text(node.total_keys))
        return text

    def _disk_line(self, node: NodeSnapshot, width: int) -> Content:
        disk = node.disk
        ratio = disk.usage_ratio
        state = "status-crit" if node_alert(node, "disk-usage") else "status-ok"
        # Sizes only when the source knows them (Prometheus has the ratio alone): never "—/—".
        used = (
            f" {bytes_text(disk.volume_used_bytes)}/{bytes_text(disk.volume_total_bytes)}"
            if disk.volume_used_bytes is not None and disk.volume_total_bytes
            else ""
        )
        wide = width >= 44
        left = line(
            f"disk [${state}]$bar[/] $percent$used",
            bar=bar(ratio, 10 if wide else 6),
            percent=percent_text(ratio),
            used=used,
        )
        ttf = self.trends.time_to_full_seconds
        if ttf is not None:
            left += line(" [dim]full in ~$ttf[/dim]" if wide else " [dim]~$ttf[/dim]", ttf=coarse_duration_text(ttf))
        return spread(left, self._spark("disk_ratio", width), width)

    @staticmethod
    def _spark_width(width: int) -> int:
        """A quarter of the card, 5 to 24 points (a point per closed bucket: 5 s each by default)."""
        return max(5, min(24, width // 4))

    def _components_line(self, node: NodeSnapshot) -> Content:
        parts = node.disk.components
        return line(
            "[dim]wal $wal · store $store · snap $snap · bkp $bkp · quar $quar[/dim]",
            wal=bytes_text(parts.wal_bytes),
            store=bytes_text(parts.store_bytes),
            snap=bytes_text(parts.snapshots_bytes),
            bkp=bytes_text(parts.backups_bytes),
            quar=bytes_text(parts.quarantine_bytes),
        )

    def _memory_line(self, node: NodeSnapshot, width: int) -> Content:
        memory = node.memory
        state = "status-crit" if node_alert(node, "memory-usage") else "status-ok"
        cache = memory.cache_bytes if memory.cache_bytes is not None else memory.memtable_bytes
        if width >= 44:
            left = line(
                f"mem  [${state}]$percent[/] host · rss $rss · cache $cache",
                percent=percent_text(memory.usage_ratio),
                rss=bytes_text(memory.node_rss_bytes),
                cache=bytes_text(cache),
            )
        else:
            left = line(
                f"mem  [${state}]$percent[/] · rss $rss",
                percent=percent_text(memory.usage_ratio),
                rss=bytes_text(memory.node_rss_bytes),
            )
        return spread(left, self._spark("memory_ratio", width), width)

    def _replication_line(self, node: NodeSnapshot, width: int) -> Content:
        replication = node.replication
        if replication.split_brain:
            return line("repl [b $status-crit]✖ SPLIT BRAIN[/] epoch $epoch", epoch=str(node.epoch))
        if node.role != "standby" and replication.upstream is None:
            # A primary has no lag to show ("lag 0s" reads like a measurement); its standbys, if it names them.
            standbys = f"serves {', '.join(replication.standbys)}" if replication.standbys else "no upstream"
            return line(f"repl [dim]{node.role}, $standbys[/dim]", standbys=standbys)
        lag_state = "status-warn" if lagging_seconds(node, self.thresholds) is not None else "status-ok"
        left = line(
            f"lag  [${lag_state}]$records rec · $bytes · $seconds[/]",
            records=count_text(replication.lag_records),
            bytes=bytes_text(replication.lag_bytes),
            seconds="—" if replication.lag_seconds is None else f"{replication.lag_seconds:.0f}s",
        )
        return spread(left, self._spark("lag_seconds", width), width)

    def _backup_line(self, node: NodeSnapshot, width: int) -> Content:
        backup = node.backup
        wal = self._archive_text(node) if width >= 44 else ""
        if backup.last_backup_at is None:
            reason = backup.error or "no backup repository configured"
            return line(f"bkp  [$status-warn]▲ NONE[/] [dim]$reason[/dim]{wal}", reason=reason)
        age = duration_text(backup.age_seconds(self.now)) if self.now else "—"
        verified = {
            True: "[$status-ok]✔ verified[/]",
            False: "[$status-warn]▲ unverified[/]",
            None: "[$status-unknown]? unknown[/]",
        }[backup.verified]
        return line(f"bkp  $age ago {verified}{wal}", age=age)

    @staticmethod
    def _archive_text(node: NodeSnapshot) -> str:
        """`` · wal 4s`` (the oldest write not yet archived), or why the WAL is held, when the node says."""
        backup = node.backup
        if backup.archive_state is None or backup.archive_state == "standby":
            return ""
        lag = "—" if backup.archive_lag_seconds is None else duration_text(backup.archive_lag_seconds)
        held = f", {bytes_text(backup.wal_held_bytes)} held" if backup.wal_held_bytes else ""
        if backup.archive_state == "refusing":
            return f" · [$status-crit]✖ wal full{held}[/]"
        if backup.archive_state in ("failing", "held"):
            return f" · [$status-warn]▲ wal {lag}{held}[/]"
        return f" · [dim]wal {lag}[/dim]"

    def _alert_lines(self, node: NodeSnapshot, room: int) -> list[Content]:
        if not node.alerts:
            return [line("[dim]no alerts[/dim]")]
        lines = [line(f"{severity_markup(alert.severity)} $message", message=alert.message) for alert in node.alerts]
        if len(lines) > room:
            lines = lines[: max(1, room - 1)] + [line(f"[dim]+{len(lines) - max(1, room - 1)} more[/dim]")]
        return lines


def node_alert(node: NodeSnapshot, rule: str) -> bool:
    return any(alert.rule == rule for alert in node.alerts)
