"""What the console knows about the current playbook run, folded from its event stream."""

from __future__ import annotations

from dataclasses import dataclass, field

from console.run_view import (
    LogLine,
    NeedsConfirmation,
    RunEvent,
    RunFinished,
    RunStarted,
    StepFinished,
    StepInfo,
    StepProgress,
    StepStarted,
    StepStatus,
)

__all__ = ["RunState"]


@dataclass
class RunState:
    playbook_id: str
    node: str
    title: str = ""
    run_id: str = ""
    simulated: bool = False
    steps: tuple[StepInfo, ...] = ()
    statuses: dict[str, StepStatus] = field(default_factory=dict)
    progress: StepProgress | None = None
    log: list[str] = field(default_factory=list)
    finished: RunFinished | None = None
    started: bool = False
    waiting: NeedsConfirmation | None = None

    @property
    def running(self) -> bool:
        return self.started and self.finished is None

    def step(self, step_id: str) -> StepInfo | None:
        return next((step for step in self.steps if step.id == step_id), None)

    def apply(self, event: RunEvent) -> None:
        if isinstance(event, RunStarted):
            self.started = True
            self.run_id = event.run_id
            self.steps = event.steps
            self.statuses = {step.id: "pending" for step in event.steps}
        elif isinstance(event, StepStarted):
            self.statuses[event.step_id] = "running"
            self.progress = None
            self.waiting = None
        elif isinstance(event, StepProgress):
            self.progress = event
        elif isinstance(event, LogLine):
            prefix = "" if event.level == "info" else f"{event.level.upper()}: "
            self.log.append(prefix + event.text)
        elif isinstance(event, NeedsConfirmation):
            self.statuses[event.step_id] = "waiting"
            self.waiting = event
        elif isinstance(event, StepFinished):
            self.statuses[event.step_id] = event.status
            if self.waiting is not None and self.waiting.step_id == event.step_id:
                self.waiting = None
        elif isinstance(event, RunFinished):
            self.finished = event
            self.waiting = None
