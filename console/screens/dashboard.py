"""The wall-screen dashboard: read-only, large type, nothing to act on."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Grid
from textual.widgets import Static

from console.screens.base import ConsoleScreen
from console.widgets.key_bar import KeyBar
from console.widgets.alert_strip import AlertStrip
from console.widgets.dashboard_header import DashboardHeader
from console.widgets.fleet_tile import FleetTile
from console.widgets.split_brain_banner import SplitBrainBanner

__all__ = ["DashboardScreen"]


class DashboardScreen(ConsoleScreen):
    """No bindings beyond the app's help and quit: a status board offers no action.

    Focus is disabled so that no key (tab, enter) can reach anything on it.
    """

    SCREEN_LABEL = "Dashboard"
    AUTO_FOCUS = None
    BINDINGS: ClassVar[list[BindingType]] = []
    """
    | Key(s) | Description |
    | :- | :- |
    | ? | Help (the app's binding). |
    | ctrl+q | Quit (the app's binding). |
    """

    def compose(self) -> ComposeResult:
        yield self.status_bar()
        yield DashboardHeader(tz=self.console.tz, id="dashboard-header")
        yield SplitBrainBanner()
        yield AlertStrip()
        yield Grid(id="tiles")
        yield Static(self.console.notice, id="dashboard-notice", markup=False)
        yield KeyBar()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#dashboard-notice", Static).display = bool(self.console.notice)
        self.watch(self.console, "snapshot", self._show, init=True)
        self.watch(self.console, "now", self._show_now, init=True)

    def _tiles(self) -> list[FleetTile]:
        return list(self.query(FleetTile))

    def _show(self) -> None:
        snapshot = self.console.snapshot
        header = self.query_one(DashboardHeader)
        header.snapshot = snapshot
        if snapshot is None:
            return
        self.query_one(AlertStrip).alerts = snapshot.alerts
        self.query_one(SplitBrainBanner).nodes = snapshot.split_brain_nodes
        names = [node.name for node in snapshot.nodes]
        grid = self.query_one("#tiles", Grid)
        if [tile.node_name for tile in self._tiles()] != names:
            grid.remove_children()
            grid.mount_all([FleetTile(name, tz=self.console.tz, id=f"tile-{index}") for index, name in enumerate(names)])
            self.call_after_refresh(self._show)
            return
        for tile, node in zip(self._tiles(), snapshot.nodes, strict=False):
            tile.node = node
            tile.now = self.console.now
        count = len(names)
        width = self.size.width
        columns = min(count, 4 if width >= 180 else (3 if width >= 120 and count > 4 else 2)) or 1
        grid.styles.grid_size_columns = columns

    def _show_now(self) -> None:
        self.query_one(DashboardHeader).now = self.console.now
        for tile in self._tiles():
            tile.now = self.console.now
