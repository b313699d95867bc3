"""The alert strip: every firing alert, critical first, as symbol + word + message."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from console.format import severity_markup
from console.widgets.text import line
from playbooks.fleet import Alert

__all__ = ["AlertStrip"]


class AlertStrip(Widget):
    """One line per alert, up to ``max_lines``; the rest are counted ("+2 more: see Timeline").

    No bindings: the alerts are also on the cards and in the Timeline.
    """

    alerts: reactive[tuple[Alert, ...]] = reactive((), layout=True)
    max_lines: reactive[int] = reactive(3, layout=True)

    def render(self) -> Content:
        alerts = self.alerts
        if not alerts:
            return line("[$status-ok]✔ OK[/] no active alerts")
        shown = alerts if len(alerts) <= self.max_lines else alerts[: max(1, self.max_lines - 1)]
        lines = [line(f"{severity_markup(alert.severity)} [b]$node[/b] $message", node=alert.node,
                      message=alert.message) for alert in shown]
        if len(shown) < len(alerts):
            lines.append(line(f"[dim]+{len(alerts) - len(shown)} more alerts: see the Timeline (4)[/dim]"))
        return Content("\n").join(lines)
