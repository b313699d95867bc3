"""What every main screen shares: the status bar on top, the footer below, the app's state watched."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.screen import Screen

from console.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from console.tui.app import DrConsoleApp

__all__ = ["ConsoleScreen"]


class ConsoleScreen(Screen[None]):
    """A main screen; subclasses yield a ``StatusBar`` first and call ``super().on_mount()``."""

    SCREEN_LABEL = ""

    @property
    def console(self) -> DrConsoleApp:
        return cast("DrConsoleApp", self.app)

    def status_bar(self) -> StatusBar:
        self._status_bar = StatusBar(tz=self.console.tz, thresholds=self.console.thresholds, id="status-bar")
        clock = getattr(self.console, "rto_clock", None)
        if clock is not None:  # drill mode: the header's clock is the drill's (console.tui.drill_mode)
            self._status_bar.rto_clock = clock
        return self._status_bar

    def on_mount(self) -> None:
        bar = self._status_bar
        bar.screen_name = self.SCREEN_LABEL
        caps = self.console.capabilities
        bar.mode = "READ-ONLY" if caps.read_only else ""
        self.watch(self.console, "snapshot", self._bar_snapshot, init=True)
        self.watch(self.console, "now", self._bar_now, init=True)
        self.watch(self.console, "incident_revision", self._bar_incident, init=True)

    # The bar is kept, not queried: a query walks the screen's DOM, and these run every tick.
    def _bar_snapshot(self) -> None:
        self._status_bar.snapshot = self.console.snapshot

    def _bar_now(self) -> None:
        self._status_bar.now = self.console.now

    def _bar_incident(self) -> None:
        self._status_bar.incident = self.console.incident
        self._status_bar.elsewhere = self.console.incidents_elsewhere
