"""The run event stream: what the runner tells its renderers (the CLI's Rich output, the TUI).

Kinds, in the order a run emits them::

    run_started -> (step_started -> progress* / log* / needs_confirmation? -> step_finished)* -> run_finished

Any number of listeners receive every event, on the runner's thread. A listener that raises is
dropped from nothing and stops nothing: a broken renderer must not break a recovery.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["RunEvent", "Listener", "EventBus", "EVENT_KINDS", "ProgressClock"]

EVENT_KINDS = ("run_started", "step_started", "progress", "log", "needs_confirmation", "step_finished", "run_finished")


@dataclass(frozen=True)
class RunEvent:
    kind: str
    run_id: str
    playbook: str
    step_id: str | None = None
    index: int | None = None  # 1-based position of the step
    steps: int | None = None  # how many steps the run has
    message: str = ""
    level: str = "info"
    status: str | None = None
    duration_seconds: float | None = None
    done: int | None = None  # progress: units done of ``total`` (bytes or records)
    total: int | None = None
    unit: str | None = None
    eta_seconds: float | None = None
    phase: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value not in (None, "", {})}


Listener = Callable[[RunEvent], None]


class EventBus:
    def __init__(self, listeners: list[Listener] | None = None) -> None:
        self.listeners: list[Listener] = list(listeners or [])

    def subscribe(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def emit(self, event: RunEvent) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a renderer's bug must not stop a recovery
                continue


class ProgressClock:
    """Turns (done, total) samples of one step into an ETA from the rate so far."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.phase = ""

    def eta(self, done: int, total: int, phase: str) -> float | None:
        if phase != self.phase:
            self.phase, self.started = phase, time.monotonic()
        elapsed = time.monotonic() - self.started
        if done <= 0 or total <= 0 or elapsed <= 0:
            return None
        return max(0.0, (total - done) / (done / elapsed))
