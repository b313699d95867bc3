"""The dialog for an unexpected error in a background task (the one place workers' errors land)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from console.tui.widgets.text import line

__all__ = ["ErrorDialog"]


class ErrorDialog(ModalScreen[None]):
    """What failed and what to do; enter or escape closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter", "dismiss", "Close"),
    ]
    """
    | Key(s) | Description |
    | :- | :- |
    | enter, escape | Close the dialog. |
    """

    def __init__(self, title: str, detail: str) -> None:
        super().__init__()
        self.title_text = title
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(id="error-dialog"):
            yield Static(
                line(
                    "[b $status-crit]✖ $title[/]\n$detail\n\n[dim]This is a bug in drconsole if it "
                    "repeats; the console keeps running. enter closes.[/dim]",
                    title=self.title_text,
                    detail=self.detail,
                )
            )
