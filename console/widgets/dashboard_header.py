"""The dashboard's headline: the time in large digits and the fleet's tally in words."""

from __future__ import annotations

from datetime import datetime, tzinfo

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Digits, Static

from console.format import HEALTH_STYLE, clock_text
from console.widgets.text import line
from playbooks.fleet import FleetSnapshot, Health

__all__ = ["DashboardHeader"]


class DashboardHeader(Horizontal):
    """Large clock on the left, node tally on the right. No bindings."""

    snapshot: reactive[FleetSnapshot | None] = reactive(None)
    now: reactive[datetime | None] = reactive(None)

    def __init__(self, *, tz: tzinfo | None = None, title: str = "drconsole", id: str | None = None) -> None:
        super().__init__(id=id)
        self.tz = tz
        self.title = title

    def compose(self) -> ComposeResult:
        yield Digits("--:--", id="dashboard-clock")
        yield Static(id="dashboard-tally")

    def watch_now(self, now: datetime | None) -> None:
        if self.is_mounted:
            # Minutes: a wall clock's seconds would redraw three lines of large digits every second.
            text = clock_text(now, self.tz)[:5] if now else "--:--"
            clock = self.query_one("#dashboard-clock", Digits)
            if clock.value != text:
                clock.update(text)

    def watch_snapshot(self, snapshot: FleetSnapshot | None) -> None:
        if not self.is_mounted:
            return
        tally = self.query_one("#dashboard-tally", Static)
        if snapshot is None:
            tally.update(line("[b]$title[/b]\nwaiting for the first refresh", title=self.title))
            return
        counts = {health: 0 for health in Health}
        for node in snapshot.nodes:
            counts[node.health] += 1
        parts = [f"[b ${HEALTH_STYLE[health][2]}]{HEALTH_STYLE[health][0]} {count} {HEALTH_STYLE[health][1]}[/]"
                 for health, count in counts.items() if count]
        alerts = len(snapshot.alerts)
        tally.update(Content("\n").join([
            line("[b]$title[/b] · $count nodes · read-only · clock $zone", title=self.title,
                 count=str(len(snapshot.nodes)), zone="UTC" if self.tz is None else str(self.tz)),
            line("  ".join(parts)),
            line(f"{alerts} active alert{'s' if alerts != 1 else ''}" if alerts else "[$status-ok]✔ no active alerts[/]"),
        ]))

    def on_mount(self) -> None:
        self.watch_now(self.now)
        self.watch_snapshot(self.snapshot)
