"""What the Run screen needs from a playbook run: ``RunSession`` and the events it streams.

The runner belongs to ``playbooks`` (it executes steps, writes the journal and the audit log);
the Run screen renders its event stream and forwards the responder's decisions: confirm a
destructive step (by typing the node name), decline it, or cancel the run. ``RunLauncher``
starts runs and lists interrupted ones to resume. A read-only console has no launcher at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from console.triage_view import Recommendation

__all__ = [
    "LogLine", "NeedsConfirmation", "ResumableRun", "RunEvent", "RunFinished", "RunLauncher", "RunSession",
    "RunStarted", "StepFinished", "StepInfo", "StepProgress", "StepStarted", "StepStatus",
]

StepStatus = Literal["pending", "running", "succeeded", "failed", "skipped", "cancelled", "waiting"]


@dataclass(frozen=True)
class StepInfo:
    id: str
    title: str
    action: str = ""
    destructive: bool = False


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    playbook_id: str
    node: str
    steps: tuple[StepInfo, ...]


@dataclass(frozen=True)
class StepStarted:
    step_id: str


@dataclass(frozen=True)
class StepProgress:
    step_id: str
    done: int
    total: int
    bytes_done: int | None = None
    bytes_total: int | None = None
    eta_seconds: float | None = None


@dataclass(frozen=True)
class LogLine:
    text: str
    level: str = "info"  # "info" | "warning" | "error"


@dataclass(frozen=True)
class NeedsConfirmation:
    """A destructive step waits: the responder must type ``node`` to let it run."""

    step_id: str
    node: str
    what: str


@dataclass(frozen=True)
class StepFinished:
    step_id: str
    status: StepStatus
    detail: str = ""


@dataclass(frozen=True)
class RunFinished:
    status: Literal["succeeded", "failed", "cancelled", "refused"]
    detail: str = ""


RunEvent = RunStarted | StepStarted | StepProgress | LogLine | NeedsConfirmation | StepFinished | RunFinished


@runtime_checkable
class RunSession(Protocol):
    run_id: str
    playbook_id: str
    node: str
    simulated: bool

    def steps(self) -> Sequence[StepInfo]: ...

    def events(self) -> AsyncIterator[RunEvent]:
        """The run's events until ``RunFinished`` (the run starts when this is first iterated)."""
        ...

    def confirm(self, step_id: str, typed: str) -> bool:
        """Let a waiting destructive step run; refused (False) unless ``typed`` is the node name."""
        ...

    def decline(self, step_id: str) -> None: ...

    def cancel(self) -> None: ...


@dataclass(frozen=True)
class ResumableRun:
    run_id: str
    playbook_id: str
    node: str
    step_id: str  # the step it was in


class RunLauncher(Protocol):
    def plan(self, recommendation: Recommendation, node: str) -> Sequence[StepInfo]:
        """The steps a run would take (shown before it starts; changes nothing)."""
        ...

    def start(self, recommendation: Recommendation, node: str) -> RunSession: ...

    def resumable(self) -> Sequence[ResumableRun]: ...

    def resume(self, run_id: str) -> RunSession: ...
