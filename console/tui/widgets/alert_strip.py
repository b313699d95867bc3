"""The alert strip: a degraded source's notice, then every firing alert, critical first.

On the Overview the strip is selectable (``AlertStrip(selectable=True)``, focused with ``!``, and
focusable only until it loses focus again):
up/down move the cursor, enter triages the alert's node at the question the alert starts
(``Selected``), ``m`` (mute) asks to silence it in Alertmanager (``SilenceRequested``).
When no alert fires, the strip says so once, and says which nodes are not OK all the same
(``quiet_note``): alerts wait for their rule (node-down after 30 s), a wall screen must not. The app decides
what those may do (console.tui.screens.silence); on the dashboard the strip cannot take focus, so no
key reaches it.
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from console.format import severity_markup
from console.tui.widgets.text import line
from fleet import Alert

__all__ = ["AlertStrip"]

LINES = 4  # the strip's rows by default: notices first, then as many alerts as fit (a wall screen sets more)


class AlertStrip(Widget):
    """Notices, then one line per alert; the rest are counted ("+2 more: see Timeline")."""

    DEFAULT_CSS = """
    AlertStrip:focus { background: $boost; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,j", "move(1)", "Next alert", show=False),
        Binding("up,k", "move(-1)", "Previous alert", show=False),
        Binding("enter", "select", "Triage"),
        Binding("m", "silence", "Silence"),  # m(ute): "s" starts a run on the Run screen
    ]
    """
    | Key(s) | Description |
    | :- | :- |
    | up/down | Move between alerts (when the strip has focus: ! on the Overview). |
    | enter | Triage the alert's node, starting at the question the alert links to. |
    | m | Silence (mute) the alert in Alertmanager (asks for a duration and a comment). |
    """

    class Selected(Message):
        """The responder picked an alert: triage its node from the question it starts."""

        def __init__(self, alert: Alert) -> None:
            super().__init__()
            self.alert = alert

    class SilenceRequested(Message):
        """The responder asked to silence an alert (the app checks the mode and asks to confirm)."""

        def __init__(self, alert: Alert) -> None:
            super().__init__()
            self.alert = alert

    alerts: reactive[tuple[Alert, ...]] = reactive((), layout=True)
    notices: reactive[tuple[str, ...]] = reactive((), layout=True)
    quiet_note: reactive[str] = reactive("", layout=True)
    cursor: reactive[int] = reactive(0)
    max_lines: reactive[int] = reactive(LINES, layout=True)

    def __init__(self, *, selectable: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.selectable = selectable
        # Focusable only while in use: otherwise the screen's first focus (and tab) would land here
        # and the arrows would move in the strip instead of between the node cards.
        self.can_focus = False

    def take_focus(self) -> bool:
        """Focus the strip to pick an alert (``a`` on the Overview); False when it is not selectable."""
        if not self.selectable:
            return False
        self.can_focus = True
        self.focus()
        return True

    @property
    def highlighted(self) -> Alert | None:
        if not self.alerts:
            return None
        return self.alerts[min(self.cursor, len(self.alerts) - 1)]

    def watch_alerts(self) -> None:
        self.cursor = min(self.cursor, max(0, len(self.alerts) - 1))

    def action_move(self, step: int) -> None:
        if self.alerts:
            self.cursor = (self.cursor + step) % len(self.alerts)

    def action_select(self) -> None:
        if self.highlighted is not None:
            self.post_message(self.Selected(self.highlighted))

    def action_silence(self) -> None:
        if self.highlighted is not None:
            self.post_message(self.SilenceRequested(self.highlighted))

    def render(self) -> Content:
        lines = [
            line("[b $status-warn]⚠ DEGRADED[/] $notice", notice=notice)
            for notice in self.notices[: self.max_lines - 1]
        ]
        alerts = self.alerts
        if not alerts:
            if self.quiet_note:
                lines.append(line("[b $status-warn]▲ NOT OK[/] $note", note=self.quiet_note))
            else:
                lines.append(line("[$status-ok]✔ OK[/] no active alerts"))
            return Content("\n").join(lines)
        room = max(1, self.max_lines - len(lines))
        cursor = min(self.cursor, len(alerts) - 1)
        count = len(alerts) if len(alerts) <= room else max(1, room - 1)  # the last row counts the rest
        start = min(max(0, cursor - count + 1), len(alerts) - count)  # the cursor stays in view
        shown = alerts[start : start + count]
        marked = self.has_focus
        for index, alert in enumerate(shown, start=start):
            mark = ("▶ " if index == cursor else "  ") if marked else ""
            silence = (
                " [dim](m: silence)[/dim]" if marked and index == cursor and alert.source == "alertmanager" else ""
            )
            lines.append(
                line(
                    f"$mark{severity_markup(alert.severity)} [b]$node[/b] $message{silence}",
                    mark=mark,
                    node=alert.node,
                    message=alert.message,
                )
            )
        hidden = len(alerts) - len(shown)
        if hidden:
            lines.append(line(f"[dim]+{hidden} more alerts: see the Timeline (4)[/dim]"))
        return Content("\n").join(lines)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.can_focus = False
        self.refresh()
