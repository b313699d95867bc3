"""``SimulatedLauncher``: runs that show every step, confirm and cancel, and change nothing.

It stands in for the playbooks' runner until that lands: each recommended playbook gets a
plausible plan from the reference procedures, and its steps only advance progress counters.
The Run screen labels such runs "simulation". Confirmation is checked here, at the action
layer, not only in the dialog.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime

from console.run_view import (
    LogLine,
    NeedsConfirmation,
    ResumableRun,
    RunEvent,
    RunFinished,
    RunStarted,
    StepFinished,
    StepInfo,
    StepProgress,
    StepStarted,
)
from console.triage_view import Recommendation

__all__ = ["PLANS", "SimulatedLauncher", "SimulatedRun"]

MIB = 2**20
PLANS: dict[str, tuple[StepInfo, ...]] = {
    "data-recovery": (
        StepInfo("safety-copy", "Take a safety copy of the data dir", "engine.checkpoint"),
        StepInfo("verify", "Verify every checksum", "engine.verify"),
        StepInfo("quarantine", "Move corrupt files to quarantine", "engine.quarantine_corrupt", destructive=True),
        StepInfo("replay-wal", "Replay the WAL", "wal.replay"),
        StepInfo("validate", "Validate the recovered data", "engine.verify"),
    ),
    "free-disk-space": (
        StepInfo("measure", "Measure what uses the volume", "disk.measure"),
        StepInfo("safety-copy", "Take a safety copy (hard links)", "engine.checkpoint"),
        StepInfo("archive-wal", "Archive sealed WAL segments", "backup.archive_wal"),
        StepInfo("recycle-wal", "Recycle archived WAL segments", "wal.recycle", destructive=True),
        StepInfo("compact", "Compact the store", "engine.compact"),
    ),
}
DEFAULT_PLAN = (
    StepInfo("inspect", "Inspect the node", "node.inspect"),
    StepInfo("apply", "Apply the procedure", "node.apply", destructive=True),
    StepInfo("validate", "Validate the node", "engine.verify"),
)


class SimulatedRun:
    """One simulated run; ``step_seconds`` paces it (0 in tests)."""

    simulated = True

    def __init__(self, recommendation: Recommendation, node: str, *, run_id: str, step_seconds: float = 0.6,
                 ticks_per_step: int = 4) -> None:
        self.recommendation = recommendation
        self.playbook_id = recommendation.playbook_id
        self.node = node
        self.run_id = run_id
        self.step_seconds = step_seconds
        self.ticks_per_step = ticks_per_step
        self._steps = PLANS.get(recommendation.playbook_id, DEFAULT_PLAN)
        self._decisions: dict[str, asyncio.Future[bool]] = {}
        self._cancelled = asyncio.Event()

    def steps(self) -> Sequence[StepInfo]:
        return self._steps

    def confirm(self, step_id: str, typed: str) -> bool:
        if typed.strip() != self.node:
            return False
        decision = self._decisions.get(step_id)
        if decision is None or decision.done():
            return False
        decision.set_result(True)
        return True

    def decline(self, step_id: str) -> None:
        decision = self._decisions.get(step_id)
        if decision is not None and not decision.done():
            decision.set_result(False)

    def cancel(self) -> None:
        self._cancelled.set()
        for decision in self._decisions.values():
            if not decision.done():
                decision.set_result(False)

    async def _pause(self, seconds: float) -> bool:
        """Sleep, or return True early when the run is cancelled."""
        try:
            await asyncio.wait_for(self._cancelled.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def events(self) -> AsyncIterator[RunEvent]:
        yield RunStarted(self.run_id, self.playbook_id, self.node, tuple(self._steps))
        yield LogLine(f"simulation of {self.playbook_id} on {self.node}: nothing is changed")
        for index, step in enumerate(self._steps):
            if self._cancelled.is_set():
                for rest in self._steps[index:]:
                    yield StepFinished(rest.id, "cancelled")
                yield RunFinished("cancelled", "cancelled by the responder")
                return
            if step.destructive:
                decision = asyncio.get_running_loop().create_future()
                self._decisions[step.id] = decision
                yield NeedsConfirmation(step.id, self.node, step.title)
                if not await decision:
                    yield StepFinished(step.id, "cancelled", "not confirmed")
                    for rest in self._steps[index + 1:]:
                        yield StepFinished(rest.id, "cancelled")
                    yield RunFinished("cancelled", f"step {step.id} was not confirmed")
                    return
                yield LogLine(f"{step.id}: confirmed by typing {self.node!r}")
            yield StepStarted(step.id)
            total_bytes = (index + 1) * 64 * MIB
            for tick in range(1, self.ticks_per_step + 1):
                if await self._pause(self.step_seconds / self.ticks_per_step):
                    yield StepFinished(step.id, "cancelled", "cancelled while running")
                    for rest in self._steps[index + 1:]:
                        yield StepFinished(rest.id, "cancelled")
                    yield RunFinished("cancelled", "cancelled by the responder")
                    return
                remaining = (self.ticks_per_step - tick) * self.step_seconds / self.ticks_per_step
                yield StepProgress(step.id, tick, self.ticks_per_step, total_bytes * tick // self.ticks_per_step,
                                   total_bytes, remaining)
            yield LogLine(f"{step.id}: {step.title.lower()} (simulated)")
            yield StepFinished(step.id, "succeeded")
        yield RunFinished("succeeded", "every step succeeded (simulated)")


class SimulatedLauncher:
    """Starts ``SimulatedRun``s; there is never an interrupted one to resume."""

    simulated = True

    def __init__(self, *, step_seconds: float = 0.6, clock: Callable[[], datetime] = datetime.now) -> None:
        self.step_seconds = step_seconds
        self.clock = clock
        self.count = 0

    def plan(self, recommendation: Recommendation, node: str) -> Sequence[StepInfo]:
        return PLANS.get(recommendation.playbook_id, DEFAULT_PLAN)

    def start(self, recommendation: Recommendation, node: str) -> SimulatedRun:
        self.count += 1
        run_id = f"sim-{self.clock():%H%M%S}-{self.count}"
        return SimulatedRun(recommendation, node, run_id=run_id, step_seconds=self.step_seconds)

    def resumable(self) -> Sequence[ResumableRun]:
        return ()

    def resume(self, run_id: str) -> SimulatedRun:
        raise LookupError(f"no interrupted run {run_id!r} (simulated runs keep no journal)")
