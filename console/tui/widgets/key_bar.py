"""The bottom line: the keys that work here, as text; Help and Quit whatever the width.

Textual's Footer rebuilds a widget per key on every focus change; over a slow link and at 1 Hz
that is work and bytes for nothing. This bar is one widget that redraws one line when the
bindings change. It reacts to no click: the keys are the interface.

When the line does not fit, it gives up room in this order: long labels become short ones
("Timeline" -> "Time"), the screen keys become one hint ("1-4 screens"), the palette hint goes,
and only then are this screen's keys cut (with "…"). ``? Help`` and ``^q Quit`` always stay.
"""

from __future__ import annotations

from textual.binding import ActiveBinding
from textual.content import Content
from textual.screen import Screen
from textual.widget import Widget

from console.tui.widgets.text import line

__all__ = ["KeyBar", "SHORT_LABELS"]

# The label a binding gets when room is short (80 columns with a focused card and a drill running).
SHORT_LABELS = {
    "Overview": "Ovw",
    "Triage": "Tri",
    "Timeline": "Time",
    "Export report": "Export",
    "Check health": "Health",
    "Trends": "Trnd",
    "Resume": "Resm",
    "Cancel": "Canc",
    "Silence": "Mute",
    "Close": "Close",
    "Drill": "Drl",
}
_KEEP = ("help", "quit")  # the actions that are never dropped


class KeyBar(Widget):
    """Shows the active bindings marked ``show``, the focused widget's first. No bindings of its own."""

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def _bindings_changed(self, screen: Screen[object]) -> None:
        if screen is self.screen:
            self.refresh()

    def _shown(self) -> list[ActiveBinding]:
        seen: set[int] = set()
        shown = []
        for active in self.screen.active_bindings.values():
            binding = active.binding
            if binding.show and id(binding) not in seen:
                seen.add(id(binding))
                shown.append(active)
        # What this screen offers first, then the app's keys, help and quit last.
        shown.sort(
            key=lambda active: (
                active.node is self.app,
                active.binding.action in _KEEP,
                active.binding.action == "quit",
            )
        )
        return shown

    def _part(self, active: ActiveBinding, short: bool) -> Content:
        key = self.app.get_key_display(active.binding)
        description = active.binding.description
        if short:
            description = SHORT_LABELS.get(description, description)
        style = "b $accent" if active.enabled else "dim"
        return line(f"[{style}]$key[/] $description", key=key, description=description)

    def render(self) -> Content:
        width = self.content_size.width or 80
        shown = self._shown()
        kept = [active for active in shown if active.binding.action in _KEEP]
        screens = [active for active in shown if active.binding.action.startswith("show_") and active.node is self.app]
        others = [active for active in shown if active not in kept and active not in screens]
        palette = line("[b $accent]^p[/] palette") if self.app.ENABLE_COMMAND_PALETTE else Content("")
        keys = [self.app.get_key_display(active.binding) for active in screens]
        screens_hint = line("[b $accent]$keys[/] screens", keys=f"{keys[0]}-{keys[-1]}") if len(keys) > 1 else None

        def build(short: bool, collapse: bool, with_palette: bool) -> tuple[Content, Content]:
            parts = [self._part(active, short) for active in others]
            if collapse and screens_hint is not None:
                parts.append(screens_hint)
            else:
                parts += [self._part(active, short) for active in screens]
            tail = Content("  ").join(self._part(active, short) for active in kept)
            left = Content("  ").join(parts)
            return left, tail + (Content("  ") + palette if with_palette and palette.cell_length else Content(""))

        tried = [(False, False, True), (True, False, True), (True, True, True), (True, True, False)]
        for short, collapse, with_palette in tried:
            left, right = build(short, collapse, with_palette)
            if left.cell_length + right.cell_length + 2 <= width:
                gap = width - left.cell_length - right.cell_length
                return left + Content(" " * gap) + right
        left, right = build(True, True, False)
        cut = left.truncate(max(0, width - right.cell_length - 2), ellipsis=True)
        return cut + Content(" " * max(1, width - cut.cell_length - right.cell_length)) + right
