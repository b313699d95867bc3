"""Overview: one card per node, the alert strip, the split-brain banner."""

from __future__ import annotations

import math
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, VerticalScroll
from textual.widgets import Static

from console.format import quiet_fleet_note, upstream_name
from console.tui.commands import bindings
from console.tui.screens.base import ConsoleScreen
from console.tui.trends import TrendReader
from console.tui.widgets.alert_strip import AlertStrip
from console.tui.widgets.key_bar import KeyBar
from console.tui.widgets.node_card import NodeCard
from console.tui.widgets.split_brain_banner import SplitBrainBanner

__all__ = ["OverviewScreen"]


class OverviewScreen(ConsoleScreen):
    """Every node at a glance. Move between cards with the arrows or tab; enter triages the node."""

    SCREEN_LABEL = "Overview"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,j", "move(1)", "Next", show=False),
        Binding("up,k", "move(-1)", "Previous", show=False),
        Binding("right,l", "move(1)", "Next", show=False),
        Binding("left,h", "move(-1)", "Previous", show=False),
        *bindings("overview"),  # ! (alerts): console.tui.commands' table
    ]
    """
    | Key(s) | Description |
    | :- | :- |
    | down/right, j/l | Select the next node. |
    | up/left, k/h | Select the previous node. |
    | enter | Triage the selected node (opens an incident). |
    | t | The selected node's trends, plotted (the card's binding). |
    | ! | Select an alert in the strip (enter triages from it, m silences it). |
    """

    def compose(self) -> ComposeResult:
        yield self.status_bar()
        yield SplitBrainBanner()
        yield AlertStrip(selectable=True)
        with VerticalScroll(id="cards-scroll"):
            yield Grid(id="cards")
        yield Static(self.console.notice, id="overview-notice", markup=False)
        yield KeyBar()

    def on_mount(self) -> None:
        super().on_mount()
        self._grid_layout: tuple[int, int, int] | None = None
        self._strip = self.query_one(AlertStrip)
        self._banner = self.query_one(SplitBrainBanner)
        self._grid = self.query_one("#cards", Grid)
        self._scroll = self.query_one("#cards-scroll", VerticalScroll)
        self._card_list: list[NodeCard] = []
        self._trends = TrendReader(self.console.history)
        notice = self.query_one("#overview-notice", Static)
        notice.display = bool(self.console.notice)
        self.watch(self.console, "snapshot", self._show, init=True)

    def on_resize(self) -> None:
        if self._card_list:
            self._layout()

    def _cards(self) -> list[NodeCard]:
        return self._card_list

    def _show(self) -> None:
        snapshot = self.console.snapshot
        strip, banner = self._strip, self._banner
        if snapshot is None:
            strip.alerts = ()
            return
        strip.alerts = snapshot.alerts
        strip.notices = snapshot.notices
        strip.quiet_note = quiet_fleet_note(snapshot, self.console.thresholds)
        banner.nodes = snapshot.split_brain_nodes
        grid = self._grid
        names = [node.name for node in snapshot.nodes]
        if [card.node_name for card in self._cards()] != names:
            grid.remove_children()
            self._card_list = [
                NodeCard(name, tz=self.console.tz, thresholds=self.console.thresholds, id=f"card-{index}")
                for index, name in enumerate(names)
            ]
            grid.mount_all(self._card_list)
            self.call_after_refresh(self._after_mount_cards)
        for card, node in zip(self._cards(), snapshot.nodes, strict=False):
            card.trends = self._trends.of(node.name)
            card.upstream = upstream_name(node, snapshot)
            card.now = snapshot.taken_at  # ages "as of" the snapshot: a card changes once per tick at most
            card.node = node
        self._layout()

    def _after_mount_cards(self) -> None:
        self._show()
        self._focus_selected()

    def on_screen_resume(self) -> None:
        self._focus_selected()

    def _focus_selected(self) -> None:
        """A card has the focus whenever the Overview shows (the selected node's, else the first):
        enter works at once, without a tab first."""
        cards = self._cards()
        if (
            not cards
            or isinstance(self.focused, NodeCard)
            or (self.focused is not None and self.focused.has_focus and self.focused is self._strip)
        ):
            return
        selected = self.console.selected_node
        card = next((card for card in cards if card.node_name == selected), cards[0])
        card.focus(scroll_visible=False)

    def _layout(self) -> None:
        """Cards that fill the screen: rows share the height unless that gets too small.

        Up to 150 columns: two columns (one under 60, three from 120 with more than four nodes).
        Wider (a wall screen), the grid with the fewest empty slots, up to a column per 48 cells,
        and of those the one whose cards are nearest a 5:2 shape (four nodes at 200x60: 2x2, not
        three above one).
        """
        count = max(1, len(self._cards()))
        width = self.size.width
        available = self._scroll.size.height or max(1, self.size.height - 6)
        columns = 1 if width < 60 else (3 if width >= 150 or (count > 4 and width >= 120) else 2)
        if width >= 150:
            columns = _wall_columns(count, width, available)
        columns = min(columns, count)
        rows = -(-count // columns)
        height = max(9, available // rows)
        layout = (columns, height, rows)
        if layout == self._grid_layout:
            return  # restyling the grid relays out and repaints the whole screen: only on a change
        self._grid_layout = layout
        grid = self._grid
        grid.styles.grid_size_columns = columns
        grid.styles.grid_rows = str(height)
        grid.styles.height = height * rows

    def action_focus_alerts(self) -> None:
        self._strip.take_focus()

    def action_move(self, step: int) -> None:
        cards = self._cards()
        if not cards:
            return
        focused = self.focused
        index = cards.index(focused) if isinstance(focused, NodeCard) and focused in cards else -1
        cards[(index + step) % len(cards)].focus()


def _wall_columns(count: int, width: int, height: int) -> int:
    """How many columns of cards fill a wide screen best (see ``OverviewScreen._layout``)."""

    def cost(columns: int) -> tuple[int, float]:
        rows = -(-count // columns)
        shape = (width / columns) / max(1.0, height / rows)
        return rows * columns - count, abs(math.log(shape / 2.5))

    return min(range(1, max(1, min(count, width // 48)) + 1), key=cost)
