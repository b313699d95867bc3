"""The split-brain banner: shown only while two primaries share an epoch."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from console.tui.widgets.text import line

__all__ = ["SplitBrainBanner"]


class SplitBrainBanner(Widget):
    """Hidden unless ``nodes`` is non-empty. No bindings."""

    nodes: reactive[tuple[str, ...]] = reactive(())

    def watch_nodes(self, nodes: tuple[str, ...]) -> None:
        self.display = bool(nodes)

    def render(self) -> Content:
        return line(
            "[b]✖ SPLIT BRAIN[/b]: $names are primaries in the same epoch; fence one before any write",
            names=" and ".join(self.nodes),
        )
