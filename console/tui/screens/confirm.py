"""The confirmation of a destructive step: type the node's name to let it run."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from console.tui.widgets.text import line

__all__ = ["ConfirmScreen"]


class ConfirmScreen(ModalScreen[str | None]):
    """Dismisses with what was typed when it matches the node name, else with None.

    The runner checks the name again (the action layer); this dialog only makes the check visible.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "decline", "Decline"),
    ]
    """
    | Key(s) | Description |
    | :- | :- |
    | (type) enter | Run the step once the node name is typed exactly. |
    | escape | Decline: the step does not run and the run stops. |
    """

    def __init__(self, node: str, what: str, step_id: str) -> None:
        super().__init__()
        self.node = node
        self.what = what
        self.step_id = step_id

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            yield Static(
                line(
                    "[b $status-warn]⚠ DESTRUCTIVE STEP[/] $step\n$what\n\n"
                    "Type the node name [b]$node[/b] to run it; escape declines.",
                    step=self.step_id,
                    what=self.what,
                    node=self.node,
                ),
                id="confirm-text",
            )
            yield Input(placeholder=self.node, id="confirm-input")
            with Horizontal(id="confirm-buttons"):
                yield Button("Run step", id="confirm-run", variant="error", disabled=True)
                yield Button("Decline", id="confirm-decline")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#confirm-run", Button).disabled = event.value.strip() != self.node

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() == self.node:
            self.dismiss(event.value.strip())
        else:
            self.notify(f"type {self.node!r} exactly to run the step", severity="warning")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm-run":
            value = self.query_one(Input).value.strip()
            if value == self.node:
                self.dismiss(value)
        else:
            self.dismiss(None)

    def action_decline(self) -> None:
        self.dismiss(None)
