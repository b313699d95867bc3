"""Progress events of long backup operations: bytes done out of a total, rate and ETA.

Operations take an optional ``progress`` callback and call it with ``ProgressEvent``s; the CLI
renders them as a progress bar, the playbook runner as RunEvents. A ``ProgressTracker`` throttles
the events (a callback per megabyte would cost more than the work) and always reports the end of
a phase, so a renderer can close its bar.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ProgressEvent", "ProgressCallback", "ProgressTracker"]


@dataclass(frozen=True)
class ProgressEvent:
    """Where one phase of an operation is.

    Attributes:
        phase: what is being done ("checkpoint", "pack", "archive-wal", "verify", "unpack", "replay").
        done: units done so far (bytes, or records for "replay").
        total: units in the phase (0 when unknown).
        unit: "bytes" or "records".
        elapsed_seconds: time since the phase started.
        eta_seconds: estimated time left (None until there is a rate).
        finished: the phase is complete.
    """

    phase: str
    done: int
    total: int
    unit: str
    elapsed_seconds: float
    eta_seconds: float | None
    finished: bool = False

    @property
    def rate(self) -> float:
        """Units per second so far."""
        return self.done / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0


ProgressCallback = Callable[[ProgressEvent], None]


class ProgressTracker:
    """Counts one phase and calls the callback at most every ``interval`` seconds."""

    def __init__(
        self, callback: ProgressCallback | None, phase: str, total: int, *, unit: str = "bytes", interval: float = 0.1
    ) -> None:
        self.callback = callback
        self.phase = phase
        self.total = max(0, total)
        self.unit = unit
        self.done = 0
        self._interval = interval
        self._started = time.monotonic()
        self._last_report = 0.0
        if callback is not None:
            callback(self._event(finished=False))

    def advance(self, amount: int) -> None:
        self.done += amount
        if self.callback is None:
            return
        now = time.monotonic()
        if now - self._last_report >= self._interval:
            self._last_report = now
            self.callback(self._event(finished=False))

    def finish(self) -> None:
        if self.callback is not None:
            self.total = max(self.total, self.done)
            self.callback(self._event(finished=True))

    def _event(self, *, finished: bool) -> ProgressEvent:
        elapsed = time.monotonic() - self._started
        eta = None
        if self.done and elapsed > 0 and self.total >= self.done:
            eta = (self.total - self.done) / (self.done / elapsed)
        return ProgressEvent(self.phase, self.done, self.total, self.unit, elapsed, eta, finished)
