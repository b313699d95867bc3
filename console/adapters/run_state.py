"""What the console knows about the current playbook run, folded from the runner's own events.

Before a run: the dry-run plan (``RunResult`` with ``dry_run``), or why the node cannot be acted
on. During it: ``playbooks.events.RunEvent``s as they arrive. After it: the runner's ``RunResult``
settles every step row and the run's status, so the screen never shows a failed step inside a
succeeded run; ``verified`` says when the node was checked ready (console.adapters.run_adapter).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from console.adapters.run_view import step_word

if TYPE_CHECKING:  # not at import time: the runner pulls in every engine, and first paint does not need them
    from playbooks.events import RunEvent
    from playbooks.runner import RunResult, StepOutcome

__all__ = ["LogLine", "RunState", "Verified"]

_FINAL = ("succeeded", "problem", "skipped", "failed", "refused")


@dataclass(frozen=True)
class Verified:
    """The node was checked ready after the run: when (the console's clock) and by what."""

    at: datetime
    detail: str


@dataclass(frozen=True)
class LogLine:
    level: str  # info | warning | error
    text: str
    step_id: str | None = None
    source: str = "log"  # log: the run's own log event; step or run: the console's line about one


@dataclass
class RunState:
    playbook_id: str
    node: str
    title: str = ""
    run_id: str = ""
    target: str = ""  # where the run acts: a data dir, or the node's url
    steps: list[StepOutcome] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # step id -> the runner's summary of it
    log: list[LogLine] = field(default_factory=list)
    progress: RunEvent | None = None  # the running step's latest progress event
    current: str | None = None  # the running step
    waiting: RunEvent | None = None  # needs_confirmation, until the step starts or finishes
    started: bool = False
    finished: RunEvent | None = None  # run_finished
    result: RunResult | None = None
    error: str = ""  # the runner raised instead of returning a result
    verified: Verified | None = None
    unverified: str = ""  # why a run that succeeded is not verified
    cannot: str = ""  # why the console cannot act on this node (no run is possible)
    plan: RunResult | None = None  # the dry run, when it was asked for
    planning: bool = False
    plan_wanted: bool = False  # the responder asked for the plan (p) before it was computed
    cancelled: bool = False
    resumed: bool = False

    # ------------------------------------------------------------------ what the screen asks
    @property
    def running(self) -> bool:
        return self.started and not self.done

    @property
    def done(self) -> bool:
        return self.result is not None or bool(self.error)

    @property
    def outcome(self) -> str | None:
        """The runner's status of the finished run (succeeded | failed | refused), None while it runs."""
        if self.result is not None:
            return self.result.status
        return "failed" if self.error else None

    @property
    def status(self) -> str:
        """One word for the run: see console.adapters.run_view.RUN_STYLE."""
        if self.cannot:
            return "cannot"
        if self.done:
            if self.outcome == "succeeded":
                return "succeeded" if self.verified is not None else "unverified"
            if self.cancelled:
                return "cancelled"
            return self.outcome or "failed"
        if self.finished is not None:
            return "verifying"
        if self.started:
            return "waiting" if self.waiting is not None else "running"
        if self.planning:
            return "planning"
        return "ready" if self.steps else "idle"

    def step(self, step_id: str) -> StepOutcome | None:
        return next((step for step in self.steps if step.id == step_id), None)

    def failed_step(self) -> StepOutcome | None:
        """The step that stopped the run (failed or refused), if one did."""
        for step in self.steps:
            if self.statuses.get(step.id) in ("failed", "refused"):
                return step
        return None

    def step_log(self, step_id: str) -> list[LogLine]:
        """The step's own log: what its action logged (retries, warnings), not the console's lines about it."""
        return [entry for entry in self.log if entry.step_id == step_id and entry.source == "log"]

    def fraction(self) -> float:
        """How far the run is, 0..1: finished steps plus the running step's own progress."""
        if not self.steps:
            return 0.0
        finished = sum(1 for step in self.steps if self.statuses.get(step.id) in _FINAL)
        partial = 0.0
        event = self.progress
        if self.current is not None and event is not None and event.total:
            partial = min(1.0, max(0.0, (event.done or 0) / event.total))
        return min(1.0, (finished + partial) / len(self.steps))

    # ------------------------------------------------------------------ what changes it
    def show_plan(self, plan: RunResult) -> None:
        """The dry run: its steps become the rows (a dry run's statuses are planned or skipped)."""
        self.plan = plan
        self.planning = False
        if not self.started:
            self.steps = list(plan.steps)
            self.statuses = {step.id: step.status for step in plan.steps}
            return
        # The plan came back after the responder had already started the run (a quick "s"): its
        # steps still become rows, each after its predecessor in the plan, so a step the run never
        # reached is shown (and settled as not run) rather than missing from the screen.
        for index, step in enumerate(plan.steps):
            if self.step(step.id) is not None:
                continue
            previous = plan.steps[index - 1].id if index else None
            at = next((i + 1 for i, row in enumerate(self.steps) if row.id == previous), 0)
            self.steps.insert(at, step)
            self.statuses.setdefault(step.id, "not-run" if self.done and step.status == "planned" else step.status)

    def log_plan(self) -> None:
        """The dry-run plan into the log: each step, whether it is destructive, what it would touch."""
        self.plan_wanted = False
        plan = self.plan
        if plan is None:
            return
        self._log(
            "info",
            f"plan of {plan.playbook} on {self.target or self.node} (dry run: nothing was changed):",
            source="run",
        )
        for index, step in enumerate(plan.steps, start=1):
            marks = (
                (" ⚠ destructive: asks for the node name" if step.destructive else "")
                + (f" (if {step.when})" if step.when else "")
                + (" (skipped: its condition is false)" if step.status == "skipped" else "")
            )
            self._log("info", f"{index:>2}. {step.id}: {step.summary}{marks}", source="run")
            for touched in step.would_touch:
                self._log("info", f"      {touched}", source="run")

    def resume_from(self, steps: list[StepOutcome], reasons: dict[str, str]) -> None:
        """A resumed run's rows: the journal's plan with what already finished."""
        self.resumed = True
        self.steps = list(steps)
        self.statuses = {step.id: step.status for step in steps}
        self.reasons = dict(reasons)

    def apply(self, event: RunEvent) -> None:
        kind = event.kind
        if kind == "run_started":
            self.started = True
            self.run_id = event.run_id
            self._log("info", event.message or f"{event.playbook} started", source="run")
        elif kind == "step_started":
            step_id = self._row(event)
            self.current, self.progress, self.waiting = step_id, None, None
            self.statuses[step_id] = "running"
            self._log("info", f"▶ {event.message or step_id}", step_id, source="step")
        elif kind == "progress":
            self.progress = event
        elif kind == "log":
            self._log(event.level, event.message, event.step_id)
        elif kind == "needs_confirmation":
            step_id = self._row(event)
            self.waiting = event
            self.statuses[step_id] = "waiting"
            self._log("warning", event.message, step_id, source="step")
        elif kind == "step_finished":
            step_id = self._row(event)
            status = event.status or "failed"
            self.statuses[step_id] = status
            self.reasons[step_id] = event.message
            if self.current == step_id:
                self.current, self.progress = None, None
            if self.waiting is not None and self.waiting.step_id == step_id:
                self.waiting = None
            level = "error" if status in ("failed", "refused") else "info"
            symbol, word, _ = step_word(status)
            self._log(
                level,
                f"{symbol} {step_id} {word}" + (f": {event.message}" if event.message else ""),
                step_id,
                source="step",
            )
        elif kind == "run_finished":
            self.finished = event
            self.current, self.progress, self.waiting = None, None, None
            self._log(
                "error" if event.status != "succeeded" else "info",
                f"run {event.status}" + (f": {event.message}" if event.message else ""),
                source="run",
            )

    def settle(
        self, result: RunResult | None, error: str = "", verified: Verified | None = None, unverified: str = ""
    ) -> None:
        """The run is over: the runner's result decides every row and the run's status."""
        self.result, self.error = result, error
        self.verified, self.unverified = verified, unverified
        self.current, self.progress, self.waiting = None, None, None
        if result is not None:
            self.run_id = result.run_id or self.run_id
            reported = {step.id for step in result.steps}
            for outcome in result.steps:
                if self.step(outcome.id) is None:
                    self.steps.append(outcome)
                self.statuses[outcome.id] = outcome.status
                self.reasons[outcome.id] = outcome.summary
            for step in self.steps:  # never reached (the run stopped before): not run, whatever the events said
                if step.id not in reported:
                    self.statuses[step.id] = "not-run"
        else:
            for step in self.steps:
                if self.statuses.get(step.id) in ("planned", "running", "waiting"):
                    self.statuses[step.id] = "not-run"
        if error:
            self._log("error", f"the run stopped: {error}", source="run")

    # ------------------------------------------------------------------ helpers
    def _row(self, event: RunEvent) -> str:
        """The step's id; a step the plan did not show (the automatic safety copy, a rollback) gets a row."""
        step_id = event.step_id or ""
        if self.step(step_id) is None:
            from playbooks.runner import StepOutcome

            row = StepOutcome(
                step_id,
                str(event.data.get("action", "")),
                "planned",
                summary=event.message if event.kind == "step_started" else step_id,
            )
            position = self._position(event)
            self.steps.insert(position, row)
        return step_id

    def _position(self, event: RunEvent) -> int:
        """Where a step the plan did not show goes: before the plan's step at the event's index."""
        if event.index is None:
            return len(self.steps)
        base = event.step_id.split(":", 1)[0] if event.step_id else ""
        for position, step in enumerate(self.steps):
            if step.id == base:  # a rollback goes right after the step it rolls back
                return position + 1
        return min(len(self.steps), max(0, event.index - 1))

    def _log(self, level: str, text: str, step_id: str | None = None, source: str = "log") -> None:
        self.log.append(LogLine(level if level in ("info", "warning", "error") else "info", text, step_id, source))
