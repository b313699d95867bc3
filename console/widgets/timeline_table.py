"""Every event of the incident in time order: time, kind, node, what happened."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from rich.text import Text
from textual.widgets import DataTable

from console.format import clock_text
from console.incident import TimelineEvent

__all__ = ["TimelineTable", "KIND_SYMBOL"]

KIND_SYMBOL = {"alert": "✖ alert", "alert-cleared": "✔ cleared", "incident": "● incident", "triage": "? triage",
               "override": "✎ override", "playbook": "▶ playbook", "step": "· step", "run": "■ run",
               "export": "⇩ export", "note": "✎ note", "source": "! source"}


class TimelineTable(DataTable[Text]):
    """A DataTable (its own cursor bindings) filled by ``show``."""

    def __init__(self, *, tz: tzinfo | None = None, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.tz = tz
        self.shown = 0

    def on_mount(self) -> None:
        self.add_columns("time", "kind", "node", "event")

    def show(self, events: Sequence[TimelineEvent]) -> None:
        """Show ``events``; when they only grew, append the new ones (no redraw of the rest)."""
        if len(events) < self.shown:
            self.clear()
            self.shown = 0
        for event in events[self.shown:]:
            # Text, not str: a DataTable parses str cells as markup, and event text is data.
            self.add_row(Text(clock_text(event.at, self.tz)), Text(KIND_SYMBOL.get(event.kind, event.kind)),
                         Text(event.node or ""), Text(event.text))
        if len(events) > self.shown:
            self.move_cursor(row=len(events) - 1)
        self.shown = len(events)
