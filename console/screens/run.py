"""Run: the playbook's steps with status, a progress bar with bytes and ETA, and the live log."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import RichLog, Static

from console.screens.base import ConsoleScreen
from console.widgets.key_bar import KeyBar
from console.widgets.run_progress import RunProgress
from console.widgets.step_list import StepList
from console.widgets.text import line

__all__ = ["RunScreen"]


class RunScreen(ConsoleScreen):
    """Destructive steps stop and ask for the node's name before they run."""

    SCREEN_LABEL = "Run"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "app.start_run", "Start"),
        Binding("c", "app.cancel_run", "Cancel"),
        Binding("r", "app.resume_run", "Resume"),
        Binding("escape", "app.show_screen('overview')", "Back", show=False),
    ]
    """
    | Key(s) | Description |
    | :- | :- |
    | s | Start the playbook chosen in Triage. |
    | c | Cancel the run (after the current step). |
    | r | Resume the newest interrupted run. |
    | escape | Back to the Overview. |
    """

    def compose(self) -> ComposeResult:
        yield self.status_bar()
        yield Static(id="run-title")
        with Horizontal(id="run-body"):
            yield StepList(id="run-steps")
            with Vertical(id="run-side"):
                yield RunProgress(id="run-progress")
                yield RichLog(id="run-log", wrap=True, markup=False, max_lines=2000, min_width=20)
        yield KeyBar()

    def on_mount(self) -> None:
        super().on_mount()
        self._logged = 0
        self.watch(self.console, "run_revision", self._show_if_current, init=False)
        self._show()

    def on_screen_resume(self) -> None:
        self._show()

    def _show_if_current(self) -> None:
        if self.is_current:
            self._show()

    def _show(self) -> None:
        state = self.console.run_state
        title = self.query_one("#run-title", Static)
        steps = self.query_one(StepList)
        progress = self.query_one(RunProgress)
        log = self.query_one(RichLog)
        if state is None:
            title.update(line("[dim]no playbook chosen: triage a node (2) and pick a recommended playbook[/dim]"))
            return
        launcher = self.console.launcher
        if launcher is None:
            mode = " · [b $status-warn]READ-ONLY[/] [dim](runs are refused)[/dim]"
        elif state.simulated or getattr(launcher, "simulated", False):
            mode = " · [b $status-warn]SIMULATION[/] [dim](no runner installed yet: nothing changes)[/dim]"
        else:
            mode = ""
        if state.finished is not None:
            verdict = {"succeeded": "[b $status-ok]✔ SUCCEEDED[/]", "failed": "[b $status-crit]✖ FAILED[/]",
                       "cancelled": "[b $status-warn]■ CANCELLED[/]", "refused": "[b $status-crit]✖ REFUSED[/]"}
            status = verdict[state.finished.status]
        elif state.waiting is not None:
            status = "[b $status-warn]◆ WAITING FOR CONFIRMATION[/]"
        elif state.running:
            status = "[b $accent]◐ RUNNING[/]"
        else:
            status = "[dim]ready: press s to start[/dim]"
        title.update(line(f"[b]$playbook[/b] on [b]$node[/b] · $title · {status}{mode}", playbook=state.playbook_id,
                          node=state.node, title=state.title))
        steps.steps = state.steps
        steps.statuses = dict(state.statuses)
        progress.progress = state.progress
        current = next((step for step in state.steps if state.statuses.get(step.id) == "running"), None)
        progress.label = current.title if current else ("finished" if state.finished else "idle")
        if self._logged > len(state.log):
            log.clear()
            self._logged = 0
        for text in state.log[self._logged:]:
            log.write(text)
        self._logged = len(state.log)
