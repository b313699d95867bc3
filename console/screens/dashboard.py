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
        # Kept, not queried every tick: a query walks the DOM.
        self._header = self.query_one(DashboardHeader)
        self._strip = self.query_one(AlertStrip)
        self._banner = self.query_one(SplitBrainBanner)
        self._grid = self.query_one("#tiles", Grid)
        self._tile_list: list[FleetTile] = []
        self.watch(self.console, "snapshot", self._show, init=True)
        self.watch(self.console, "now", self._show_now, init=True)

    def _tiles(self) -> list[FleetTile]:
        return self._tile_list

    def _show(self) -> None:
        snapshot = self.console.snapshot
        header = self._header
        header.snapshot = snapshot
        if snapshot is None:
            return
        self._strip.alerts = snapshot.alerts
        self._strip.notices = snapshot.notices
        self._banner.nodes = snapshot.split_brain_nodes
        names = [node.name for node in snapshot.nodes]
        grid = self._grid
        if [tile.node_name for tile in self._tiles()] != names:
            grid.remove_children()
            self._tile_list = [FleetTile(name, tz=self.console.tz, id=f"tile-{index}")
                               for index, name in enumerate(names)]
            grid.mount_all(self._tile_list)
            self.call_after_refresh(self._show)
            return
        for tile, node in zip(self._tiles(), snapshot.nodes, strict=False):
            tile.now = snapshot.taken_at  # ages as of the snapshot: a tile changes once per tick at most
            tile.node = node
        count = len(names)
        width = self.size.width
        columns = min(count, 4 if width >= 180 else (3 if width >= 120 and count > 4 else 2)) or 1
        if grid.styles.grid_size_columns != columns:  # a restyle repaints the whole screen: only on a change
            grid.styles.grid_size_columns = columns

    def _show_now(self) -> None:
        self._header.now = self.console.now  # the big clock; the tiles change with the snapshot only
