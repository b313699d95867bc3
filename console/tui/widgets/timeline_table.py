"""Every event of the incident in time order: time, kind, node, what happened."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from rich.text import Text
from textual.widgets import DataTable

from console.format import clock_text
from playbooks.incident_model import IncidentEvent

__all__ = ["TimelineTable", "KIND_SYMBOL"]

# An event kind (playbooks.incident_model.KINDS) as a symbol and a word: never colour alone.
KIND_SYMBOL = {
    "alert": "✖ alert",
    "alert_cleared": "✔ cleared",
    "opened": "● opened",
    "severity": "▲ severity",
    "triage": "? triage",
    "answer": "✔ answer",
    "override": "✎ override",
    "answer_undone": "↶ undone",
    "playbook_chosen": "▶ playbook",
    "run_started": "▶ run",
    "step": "· step",
    "confirmation": "✔ confirmed",
    "run_finished": "■ run",
    "run": "■ run",
    "verified": "✔ restored",
    "closed": "■ closed",
    "export": "⇩ export",
    "note": "✎ note",
    "source": "! source",
    "drill": "⏱ drill",
    "silence": "◌ silence",
}


class TimelineTable(DataTable[Text]):
    """A DataTable (its own cursor bindings) filled by ``show``."""

    def __init__(self, *, tz: tzinfo | None = None, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.tz = tz
        self.shown: list[IncidentEvent] = []

    def on_mount(self) -> None:
        self.add_columns("time", "kind", "node", "event")

    def show(self, events: Sequence[IncidentEvent]) -> None:
        """Show ``events``; when they only grew at the end, append the new ones (no redraw of the rest)."""
        count = len(self.shown)
        if list(events[:count]) != self.shown:  # another incident, or an event placed before the newest
            self.clear()
            self.shown = []
            count = 0
        for event in events[count:]:
            # Text, not str: a DataTable parses str cells as markup, and event text is data.
            self.add_row(
                Text(clock_text(event.at, self.tz)),
                Text(KIND_SYMBOL.get(event.kind, event.kind)),
                Text(event.node or ""),
                Text(event.message),
            )
        if len(events) > count:
            self.move_cursor(row=len(events) - 1)
        self.shown = list(events)
