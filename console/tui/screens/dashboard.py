"""The wall-screen dashboard: read-only, large type, nothing to act on, the whole screen used.

Tiles share the screen whatever its size (``tile_grid``: the columns that give each tile the most
room, the rows filling the height); each tile has its status in large type, its figures and its
trends. Alerts are in one place, the strip under the header, which grows with the screen.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Grid
from textual.widgets import Static

from console.format import quiet_fleet_note, upstream_name
from console.tui.screens.base import ConsoleScreen
from console.tui.trends import TrendReader
from console.tui.widgets.alert_strip import AlertStrip
from console.tui.widgets.dashboard_header import DashboardHeader
from console.tui.widgets.fleet_tile import FleetTile
from console.tui.widgets.key_bar import KeyBar
from console.tui.widgets.split_brain_banner import SplitBrainBanner

__all__ = ["DashboardScreen", "tile_grid"]

HEADER_ROWS = 5  # the status bar, the header (3), the key bar


def tile_grid(count: int, width: int, height: int) -> tuple[int, int]:
    """(columns, rows) of ``count`` tiles on ``width`` x ``height`` cells: the layout whose tiles are the
    largest, a cell being about twice as tall as it is wide (a tile 60 wide and 24 high reads square)."""
    if count <= 0:
        return 1, 1
    best: tuple[float, int, int] | None = None
    for columns in range(1, count + 1):
        rows = -(-count // columns)
        tile_width, tile_height = width / columns, height / rows
        if tile_width < 30 and columns > 1:
            break
        score = min(tile_width / 2.5, tile_height)
        if best is None or score > best[0]:
            best = (score, columns, rows)
    assert best is not None
    return best[1], best[2]


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
        yield DashboardHeader(tz=self.console.tz, thresholds=self.console.thresholds, id="dashboard-header")
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
        self._trends = TrendReader(self.console.history)
        self._grid_shape: tuple[int, int] | None = None
        self._status_bar.show_tally = False  # the header says it in large type: once is enough
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
        self._strip.quiet_note = quiet_fleet_note(snapshot, self.console.thresholds)
        self._banner.nodes = snapshot.split_brain_nodes
        names = [node.name for node in snapshot.nodes]
        grid = self._grid
        if [tile.node_name for tile in self._tiles()] != names:
            grid.remove_children()
            self._tile_list = [
                FleetTile(name, tz=self.console.tz, thresholds=self.console.thresholds, id=f"tile-{index}")
                for index, name in enumerate(names)
            ]
            grid.mount_all(self._tile_list)
            self._layout()
            self.call_after_refresh(self._show)
            return
        for tile, node in zip(self._tiles(), snapshot.nodes, strict=False):
            tile.trends = self._trends.of(node.name)
            tile.upstream = upstream_name(node, snapshot)
            tile.now = snapshot.taken_at  # ages as of the snapshot: a tile changes once per tick at most
            tile.node = node
        self._layout()

    def on_resize(self) -> None:
        self._layout()

    def _layout(self) -> None:
        """The grid fills the screen; the strip gets more rows on a tall one (alerts are listed nowhere else)."""
        width, height = self.size
        self._strip.max_lines = max(2, min(10, height // 6))
        rows_left = max(1, height - HEADER_ROWS - self._strip.max_lines)
        shape = tile_grid(len(self._tiles()), width, rows_left)
        if shape == self._grid_shape:
            return  # a restyle repaints the whole screen: only on a change
        self._grid_shape = shape
        grid = self._grid
        grid.styles.grid_size_columns, grid.styles.grid_size_rows = shape
        grid.styles.grid_rows = "1fr"

    def _show_now(self) -> None:
        self._header.now = self.console.now  # the big clock; the tiles change with the snapshot only
