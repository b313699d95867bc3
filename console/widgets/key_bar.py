"""The bottom line: the keys that work here, as text.

Textual's Footer rebuilds a widget per key on every focus change; over a slow link and at 1 Hz
that is work and bytes for nothing. This bar is one widget that redraws one line when the
bindings change. It reacts to no click: the keys are the interface.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen
from textual.widget import Widget

from console.widgets.text import line, spread

__all__ = ["KeyBar"]


class KeyBar(Widget):
    """Shows the active bindings marked ``show``, the focused widget's first. No bindings of its own."""

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        if screen is self.screen:
            self.refresh()

    def render(self) -> Content:
        seen: set[int] = set()
        shown = []
        for active in self.screen.active_bindings.values():
            binding: Binding = active.binding
            if binding.show and id(binding) not in seen:
                seen.add(id(binding))
                shown.append(active)
        # What this screen offers first, then the app's keys, quit last.
        shown.sort(key=lambda active: (active.node is self.app, active.binding.action == "quit"))
        parts: list[Content] = []
        for active in shown:
            key = self.app.get_key_display(active.binding)
            style = "b $accent" if active.enabled else "dim"
            parts.append(line(f"[{style}]$key[/] $description", key=key, description=active.binding.description))
        left = Content("  ").join(parts)
        palette = line("[b $accent]^p[/] palette") if self.app.ENABLE_COMMAND_PALETTE else Content("")
        return spread(left, palette, self.content_size.width or 80)
