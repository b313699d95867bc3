"""A run's steps with their status: symbol + word, destructive steps marked."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from console.run_view import StepInfo, StepStatus
from console.widgets.text import line

__all__ = ["StepList", "STEP_STYLE"]

STEP_STYLE: dict[str, tuple[str, str, str]] = {
    "pending": ("○", "pending", "status-unknown"),
    "waiting": ("◆", "confirm?", "status-warn"),
    "running": ("◐", "running", "accent"),
    "succeeded": ("✔", "done", "status-ok"),
    "failed": ("✖", "failed", "status-crit"),
    "skipped": ("⊘", "skipped", "status-unknown"),
    "cancelled": ("■", "cancelled", "status-warn"),
}


class StepList(Widget):
    """``steps`` in order with ``statuses`` by step id. No bindings."""

    steps: reactive[tuple[StepInfo, ...]] = reactive((), layout=True)
    statuses: reactive[dict[str, StepStatus]] = reactive(dict, always_update=True)

    def render(self) -> Content:
        if not self.steps:
            return line("[dim]no run yet: choose a recommended playbook in Triage (2)[/dim]")
        lines = []
        for index, step in enumerate(self.steps, start=1):
            status = self.statuses.get(step.id, "pending")
            symbol, word, variable = STEP_STYLE[status]
            danger = " [b $status-warn]⚠[/]" if step.destructive else ""
            lines.append(line(f"[${variable}]{symbol} {word:<9}[/] {index}. $title{danger}", title=step.title))
        return Content("\n").join(lines)
