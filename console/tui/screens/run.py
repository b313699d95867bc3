"""Run: the playbook's steps with the runner's status, what the run needs from the responder, progress, log.

The title line says what runs where and the run's status, which is the runner's ``RunResult``
(succeeded only once the node is verified ready). Under it one line or a few: the dry-run hint
before a start, "verified: node ready at ..." after a verified run, or the failed step with its
reason, its own log and what to do next; or, for a node the console cannot act on, why.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Static

from console.adapters.run_hints import next_actions
from console.adapters.run_state import RunState
from console.adapters.run_view import RUN_STYLE, progress_figures, verified_text
from console.tui.commands import bindings
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.key_bar import KeyBar
from console.tui.widgets.run_log import RunLog
from console.tui.widgets.run_progress import RunProgress
from console.tui.widgets.step_list import StepList
from console.tui.widgets.text import line

__all__ = ["RunScreen"]

STEP_LOG_LINES = 3  # of the failed step's own log, under its reason


class RunScreen(ConsoleScreen):
    """Destructive steps stop and ask for the node's name before they run."""

    SCREEN_LABEL = "Run"
    BINDINGS: ClassVar[list[BindingType]] = [
        *bindings("run"),  # s p c r: console.tui.commands' table
        Binding("escape", "app.show_screen('overview')", "Back", show=False),
    ]
    """
    | Key(s) | Description |
    | :- | :- |
    | s | Start the playbook chosen in Triage. |
    | p | Show its dry-run plan in the log: each step and what it would touch (nothing changes). |
    | c | Cancel the run (after the current step). |
    | r | Resume the node's last interrupted or failed run from its journal. |
    | escape | Back to the Overview. |
    """

    def compose(self) -> ComposeResult:
        yield self.status_bar()
        yield Static(id="run-title")
        yield Static(id="run-outcome")
        with Horizontal(id="run-body"):
            yield StepList(id="run-steps")
            with Vertical(id="run-side"):
                yield RunProgress(id="run-progress")
                yield RunLog(id="run-log")
        yield KeyBar()

    def on_mount(self) -> None:
        super().on_mount()
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
        outcome = self.query_one("#run-outcome", Static)
        steps = self.query_one(StepList)
        if state is None:
            title.update(line("[dim]no playbook chosen: triage a node (2) and pick a recommended playbook[/dim]"))
            outcome.display = False
            return
        word, variable = RUN_STYLE[state.status]
        mode = " · [b $status-warn]READ-ONLY[/] [dim](runs are refused)[/dim]" if self.console.launcher is None else ""
        title.update(
            line(
                f"[b]$playbook[/b] on [b]$node[/b] · $title · [b ${variable}]$word[/]{mode}",
                playbook=state.playbook_id,
                node=state.node,
                title=state.title,
                word=word,
            )
        )
        text = self._outcome(state)
        outcome.display = bool(text.cell_length)
        outcome.update(text)
        outcome.set_class(state.status in ("failed", "refused", "cancelled", "cannot"), "-failed")
        outcome.set_class(state.status == "succeeded", "-verified")
        steps.empty = (
            f"planning {state.playbook_id}…"
            if state.planning
            else "no step to show"
            if not state.cannot
            else "nothing can run on this node"
        )
        steps.steps = tuple(state.steps)
        steps.statuses = dict(state.statuses)
        self._progress(state)
        self.query_one(RunLog).show(state.log)

    def _progress(self, state: RunState) -> None:
        progress = self.query_one(RunProgress)
        progress.fraction = state.fraction()
        total = len(state.steps)
        if state.current is not None:
            step = state.step(state.current)
            index = next((i for i, row in enumerate(state.steps, start=1) if row.id == state.current), 0)
            progress.label = f"step {index}/{total} · {step.summary if step else state.current}"
            event = state.progress
            progress.figures = (
                progress_figures(event.done, event.total, event.unit, event.eta_seconds) if event is not None else ""
            )
        else:
            progress.figures = ""
            progress.label = {
                "waiting": "waiting for the node name",
                "verifying": "checking the result",
                "ready": f"{total} steps planned",
                "planning": "planning",
            }.get(state.status, f"{state.status.replace('-', ' ')}" if state.done else "idle")

    def _outcome(self, state: RunState) -> Content:
        """The lines under the title: what the responder needs to know or do now."""
        if state.cannot:
            return line("[b $status-crit]✖[/] $why", why=state.cannot)
        if state.status == "succeeded" and state.verified is not None:
            verified = line(
                "[b $status-ok]✔ verified:[/] $when [dim]($detail)[/dim]",
                when=verified_text(state.verified.at, self.console.tz),
                detail=state.verified.detail,
            )
            return Content("\n").join([verified, *self._lost(state)])
        if state.status == "unverified":
            return line("[b $status-warn]◇ not verified:[/] $why; the incident stays open", why=state.unverified)
        if state.status in ("failed", "refused", "cancelled"):
            return self._failure(state)
        if state.status == "ready":
            return line(
                "[dim]press [b]s[/b] to start on $target, [b]p[/b] for the dry-run plan "
                "(what each step would touch)[/dim]",
                target=state.target or state.node,
            )
        return Content("")

    def _lost(self, state: RunState) -> list[Content]:
        """The run's final accounting of what it could not recover: the node serves again, but a
        responder who reads only "verified" would close an incident that lost data."""
        lost = state.result.lost if state.result is not None else []
        if not lost:
            return []
        parts = [
            line(
                "[b $status-crit]⚠ data lost:[/] $count item(s) not recovered (kept in quarantine); "
                "restore them from a backup",
                count=str(len(lost)),
            )
        ]
        parts += [line("  [dim]│[/dim] $item", item=item) for item in lost[:STEP_LOG_LINES]]
        return parts

    def _failure(self, state: RunState) -> Content:
        step = state.failed_step()
        parts: list[Content] = []
        if step is not None:
            parts.append(
                line(
                    "[b $status-crit]✖ $step $status:[/] $reason",
                    step=step.id,
                    status=state.statuses.get(step.id, "failed"),
                    reason=state.reasons.get(step.id, ""),
                )
            )
            for entry in state.step_log(step.id)[-STEP_LOG_LINES:]:  # its own log
                parts.append(line("  [dim]│ $text[/dim]", text=entry.text))
        elif state.error:
            parts.append(line("[b $status-crit]✖ the run stopped:[/] $reason", reason=state.error))
        elif state.result is not None and state.result.message:
            parts.append(line("[b $status-crit]✖[/] $reason", reason=state.result.message))
        launcher = self.console.launcher
        data_dir = None
        if launcher is not None and state.node in launcher.nodes:
            data_dir = launcher.data_dir(state.node)
        for action in next_actions(state, data_dir):
            parts.append(line("[b $accent]→[/] $action", action=action))
        return Content("\n").join(parts)
