"""The dashboard's headline: the time (UTC) in large digits and the fleet's tally in words.

The alerts are not counted here: the strip under the header lists them, once. The third line says
how fresh the board is ("as of 12:04:09 UTC"): a wall screen whose source stalled must show it.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Digits, Static

from console.format import clock_text, fleet_tally
from console.tui.widgets.text import line
from fleet import FleetSnapshot, Thresholds

__all__ = ["DashboardHeader"]


class DashboardHeader(Horizontal):
    """Large clock on the left, node tally on the right. No bindings."""

    snapshot: reactive[FleetSnapshot | None] = reactive(None)
    now: reactive[datetime | None] = reactive(None)

    def __init__(
        self,
        *,
        tz: tzinfo | None = None,
        title: str = "drconsole",
        thresholds: Thresholds | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.tz = tz
        self.title = title
        self.thresholds = thresholds or Thresholds()

    def compose(self) -> ComposeResult:
        yield Digits("--:--", id="dashboard-clock")
        yield Static("\n" + ("UTC" if self.tz is None else str(self.tz)), id="dashboard-zone")
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
        parts = [
            f"[b ${variable}]{symbol} {count} {word}[/]"
            for (symbol, word, variable), count in fleet_tally(snapshot, self.thresholds)
        ]
        zone = "UTC" if self.tz is None else str(self.tz)
        tally.update(
            Content("\n").join(
                [
                    line(
                        "[b]$title[/b] · $count nodes · read-only · times in $zone",
                        title=self.title,
                        count=str(len(snapshot.nodes)),
                        zone=zone,
                    ),
                    line("  ".join(parts)),
                    line("[dim]as of $at $zone[/dim]", at=clock_text(snapshot.taken_at, self.tz), zone=zone),
                ]
            )
        )

    def on_mount(self) -> None:
        self.watch_now(self.now)
        self.watch_snapshot(self.snapshot)
