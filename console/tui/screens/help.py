"""Help: every key of every screen and every palette command, built from the bindings themselves."""

from __future__ import annotations

from typing import ClassVar, cast

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from console.tui.commands import COMMANDS, allowed
from console.tui.widgets.text import line

__all__ = ["HelpScreen"]


def _keys(bindings: list[BindingType]) -> list[tuple[str, str]]:
    """(keys, what) per binding; keys that do the same thing share a row ("down,j right,l  Next")."""
    rows: dict[str, list[str]] = {}
    for binding in bindings:
        if isinstance(binding, Binding) and binding.description:
            keys = binding.key_display or binding.key.replace("question_mark", "?")
            rows.setdefault(binding.description, []).append(keys)
    return [(" ".join(keys), description) for description, keys in rows.items()]


class HelpScreen(ModalScreen[None]):
    """A list, nothing to act on: escape, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close"),
    ]
    """
    | Key(s) | Description |
    | :- | :- |
    | escape, q, ? | Close the help. |
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static(
                line("[b $accent]escape[/] or [b $accent]?[/] closes this help · [b $accent]↑ ↓[/] scroll"),
                id="help-close",
            )
            yield Static(self._content(), id="help-text")

    def _content(self) -> Table:
        from console.tui.app import DrConsoleApp
        from console.tui.screens.dashboard import DashboardScreen
        from console.tui.screens.overview import OverviewScreen
        from console.tui.screens.run import RunScreen
        from console.tui.screens.timeline import TimelineScreen
        from console.tui.screens.triage import TriageScreen
        from console.tui.widgets.node_card import NodeCard

        app = cast(DrConsoleApp, self.app)
        dashboard = app.dashboard
        table = Table(title="drconsole keys", expand=True, show_edge=False, pad_edge=False)
        table.add_column("where", style="bold", no_wrap=True)
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("what")
        sections: list[tuple[str, list[tuple[str, str]]]] = [
            ("everywhere", [("?", "this help"), ("ctrl+p", "command palette"), ("ctrl+q", "quit")]),
        ]
        if dashboard:
            sections.append(("dashboard", [("—", "read-only status board: no action is available")]))
        else:
            sections[0][1][:0] = [
                (key, text) for key, text in _keys(DrConsoleApp.BINDINGS) if key not in ("?", "ctrl+q")
            ]
            from console.tui.screens.node import NodeScreen
            from console.tui.widgets.alert_strip import AlertStrip

            for name, screen in (
                ("overview", OverviewScreen),
                ("node card", NodeCard),
                ("triage", TriageScreen),
                ("run", RunScreen),
                ("timeline", TimelineScreen),
                ("alert strip", AlertStrip),
                ("node trends", NodeScreen),
            ):
                sections.append((name, _keys(screen.BINDINGS)))
            if getattr(app, "drill", None) is not None:  # drill mode (console.tui.drill_mode): its own keys
                from console.tui.screens.drill import DrillScreen

                drill_keys = dict(_keys(type(app).BINDINGS) + _keys(DrillScreen.BINDINGS))
                sections.append(("drill", list(drill_keys.items())))
        for name, rows in sections:
            for index, (key, text) in enumerate(rows):
                table.add_row(name if index == 0 else "", key, text)
        table.add_section()
        for command in COMMANDS:
            if allowed(command, read_only=app.capabilities.read_only, dashboard=dashboard):
                table.add_row("palette", command.title, command.help)
        if not dashboard and app.capabilities.read_only:
            table.add_row("", "", "read-only: starting runs and exporting reports are refused")
        _ = DashboardScreen
        return table
