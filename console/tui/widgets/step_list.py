"""A run's steps with their status: symbol + word, destructive steps marked (console.adapters.run_view.STEP_STYLE)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from console.adapters.run_view import step_word
from console.tui.widgets.text import line

if TYPE_CHECKING:
    from playbooks.runner import StepOutcome

__all__ = ["StepList"]


class StepList(Widget):
    """``steps`` (the plan's rows) in order with ``statuses`` by step id (the runner's words). No bindings."""

    steps: reactive[tuple[StepOutcome, ...]] = reactive((), layout=True, always_update=True)
    statuses: reactive[dict[str, str]] = reactive(dict, always_update=True)
    empty: reactive[str] = reactive("no run yet: choose a recommended playbook in Triage (2)")

    def render(self) -> Content:
        if not self.steps:
            return line("[dim]$empty[/dim]", empty=self.empty)
        lines = []
        for index, step in enumerate(self.steps, start=1):
            symbol, word, variable = step_word(self.statuses.get(step.id, "planned"))
            danger = " [b $status-warn]⚠[/]" if step.destructive else ""
            lines.append(
                line(f"[${variable}]{symbol} {word:<8}[/] {index:>2}. $title{danger}", title=step.summary or step.id)
            )
        return Content("\n").join(lines)
