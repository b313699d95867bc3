"""Timeline: every event of the incident with times; export to the incident report (Markdown)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from console.format import clock_text, duration_text
from console.tui.commands import bindings
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.key_bar import KeyBar
from console.tui.widgets.text import line
from console.tui.widgets.timeline_table import TimelineTable

__all__ = ["TimelineScreen"]


class TimelineScreen(ConsoleScreen):
    """The selected node's incident (else the headline one); with none, the fleet's events (alerts, failures)."""

    SCREEN_LABEL = "Timeline"
    BINDINGS: ClassVar[list[BindingType]] = [
        *bindings("timeline"),  # e: console.tui.commands' table
        Binding("escape", "app.show_screen('overview')", "Back", show=False),
    ]
    """
    | Key(s) | Description |
    | :- | :- |
    | e | Export the incident report (Markdown, the reference guides' template). |
    | up/down | Move through the events (the table's bindings). |
    | escape | Back to the Overview. |
    """

    def compose(self) -> ComposeResult:
        yield self.status_bar()
        yield Static(id="timeline-title")
        yield TimelineTable(tz=self.console.tz, id="timeline-table")
        yield KeyBar()

    def on_mount(self) -> None:
        super().on_mount()
        self.watch(self.console, "incident_revision", self._show_if_current, init=False)
        self.watch(self.console, "selected_node", self._show_if_current, init=False)
        self._show()

    def on_screen_resume(self) -> None:
        self._show()

    def _show_if_current(self) -> None:
        if self.is_current:
            self._show()

    def _show(self) -> None:
        incident = self.console.timeline_incident()
        title = self.query_one("#timeline-title", Static)
        if incident is None:
            title.update(
                line("[b]Fleet events[/b] · no incident open [dim](one opens when a triage finds a fault)[/dim]")
            )
        else:
            title.update(
                line(
                    "[b]$id[/b] · $severity · $state · opened $opened · RTO target $target · [dim]e: export[/dim]",
                    id=incident.id,
                    severity=incident.severity,
                    state=incident.status,
                    opened=clock_text(datetime.fromtimestamp(incident.opened_at, UTC), self.console.tz),
                    target=duration_text(incident.target_rto_seconds),
                )
            )
        self.query_one(TimelineTable).show(self.console.timeline())
