"""The base of a node's widget (Overview card, dashboard tile): lines redrawn only where they change.

Several attributes change per tick; the lines are laid out once after all of them, and only the
lines whose text changed are sent to the terminal, which keeps a slow SSH link quiet.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from textual.content import Content
from textual.geometry import Region, Size
from textual.reactive import var
from textual.widget import Widget

from console.format import lagging_seconds
from console.tui.trends import Trends
from console.tui.widgets.text import changed_lines
from fleet import Health, NodeSnapshot, Thresholds

__all__ = ["NodeLines", "corruption_text"]


def corruption_text(node: NodeSnapshot, width: int) -> str:
    """Where a corrupt node met damage, as much as ``width`` cells allow: "sstables/000012.sst @4096"
    (the file's own name alone when the path does not fit); "" when the node does not say."""
    found = node.corruption
    if node.health != Health.CORRUPT or found is None or not found.file:
        return ""
    at = f" @{found.offset}" if found.offset is not None else ""
    text = f"{found.file}{at}"
    if len(text) > width:
        text = f"{found.file.rsplit('/', 1)[-1]}{at}"
    return text


class NodeLines(Widget):
    """Subclasses give ``_render_lines()`` and may extend ``_title()``.

    The screen sets ``trends`` (the node's recent figures), ``upstream`` (the name of the node a
    standby follows) and then ``node``, once per tick; ``thresholds`` decide when a standby lags.
    """

    # ``var``: the widget itself is never repainted; its lines are, and only those that changed.
    node: var[NodeSnapshot | None] = var(None)
    now: var[datetime | None] = var(None)
    trends: var[Trends] = var(Trends)
    upstream: var[str | None] = var(None)

    def __init__(
        self,
        node_name: str,
        *,
        tz: tzinfo | None = None,
        thresholds: Thresholds | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.node_name = node_name
        self.tz = tz
        self.thresholds = thresholds or Thresholds()
        self.border_title = self._title_shown = node_name
        self._pending = False
        self._shown: list[Content] = []
        self._shown_size: Size | None = None

    def _title(self, node: NodeSnapshot) -> str:
        return f"{node.name} · {node.engine or '?'} · {node.role}"

    def _render_lines(self) -> list[Content]:
        raise NotImplementedError

    def watch_node(self, node: NodeSnapshot | None) -> None:
        if node is not None:
            title = self._title(node)
            if title != self._title_shown:  # setting a border title repaints the whole widget
                self._title_shown = self.border_title = title
            for health in Health:
                self.set_class(node.health == health, f"-{health.value}")
            self.set_class(node.health == Health.OK and lagging_seconds(node, self.thresholds) is not None, "-lagging")
        self._schedule()

    def watch_now(self) -> None:
        self._schedule()

    def watch_trends(self) -> None:
        self._schedule()

    def on_resize(self) -> None:
        self._schedule()

    def _schedule(self) -> None:
        if not self._pending and self.is_mounted:
            self._pending = True
            self.call_later(self._show)

    def _show(self) -> None:
        self._pending = False
        lines = self._render_lines()
        changed = changed_lines(self._shown, lines)
        resized = self.content_size != self._shown_size
        self._shown, self._shown_size = lines, self.content_size
        if changed is None or resized:
            self.refresh()
        elif changed:
            width = self.content_size.width
            self.refresh(*(Region(0, y, width, 1) for y in changed))

    def render(self) -> Content:
        return Content("\n").join(self._shown)
