"""The whole flow on real engines: alert -> triage -> recommended playbook -> confirm -> done -> report.

The fleet is real data directories read by LocalSource through the refresh worker. The run is a
small launcher of the test's whose destructive step really writes (a checkpoint of the node's data
dir beside it) once the responder has typed the node name. It is not the playbooks' runner and
records nothing of its own on the incident: its "succeeded" resolves nothing (done means verified).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from textual.widgets import Input

from console.app import DrConsoleApp
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
)
from console.screens.confirm import ConfirmScreen
from console.triage_view import Recommendation
from engines import create_engine, open_engine
from playbooks.fleet import LocalSource, NodeSpec, Thresholds
from playbooks.incident_store import IncidentStore
from support import available_backends

BACKENDS = available_backends()
pytestmark = pytest.mark.skipif(not BACKENDS, reason="no backend built yet")
STEPS = (StepInfo("verify", "Verify the data dir", "engine.verify"),
         StepInfo("checkpoint", "Write a checkpoint beside the data dir", "engine.checkpoint", destructive=True))


class CheckpointRun:
    simulated = False

    def __init__(self, recommendation: Recommendation, node: str, data_dir: Path) -> None:
        self.playbook_id, self.node, self.run_id = recommendation.playbook_id, node, "run-1"
        self.data_dir = data_dir
        self.target = data_dir.parent / f"{data_dir.name}.checkpoint"
        self.decision: asyncio.Future[bool] | None = None

    def steps(self) -> Sequence[StepInfo]:
        return STEPS

    def confirm(self, step_id: str, typed: str) -> bool:
        if typed != self.node or self.decision is None or self.decision.done():
            return False
        self.decision.set_result(True)
        return True

    def decline(self, step_id: str) -> None:
        if self.decision is not None and not self.decision.done():
            self.decision.set_result(False)

    def cancel(self) -> None:
        self.decline("")

    async def events(self) -> AsyncIterator[RunEvent]:
        yield RunStarted(self.run_id, self.playbook_id, self.node, STEPS)
        yield StepStarted("verify")
        with open_engine(self.data_dir, mode="ro") as engine:
            report = await asyncio.to_thread(engine.verify)
        yield LogLine(f"verify: ok={report.ok}")
        yield StepFinished("verify", "succeeded" if report.ok else "failed")
        self.decision = asyncio.get_running_loop().create_future()
        yield NeedsConfirmation("checkpoint", self.node, STEPS[1].title)
        if not await self.decision:
            yield StepFinished("checkpoint", "cancelled", "not confirmed")
            yield RunFinished("cancelled")
            return
        yield StepStarted("checkpoint")
        with open_engine(self.data_dir, mode="rw") as engine:
            lsn = await asyncio.to_thread(engine.checkpoint, self.target)
        yield StepProgress("checkpoint", 1, 1, 4096, 4096, 0)
        yield StepFinished("checkpoint", "succeeded", f"checkpoint at LSN {lsn}")
        yield RunFinished("succeeded")


class CheckpointLauncher:
    def __init__(self, dirs: dict[str, Path]) -> None:
        self.dirs = dirs
        self.runs: list[CheckpointRun] = []

    def plan(self, recommendation: Recommendation, node: str) -> Sequence[StepInfo]:
        return STEPS

    def start(self, recommendation: Recommendation, node: str) -> CheckpointRun:
        self.runs.append(CheckpointRun(recommendation, node, self.dirs[node]))
        return self.runs[-1]

    def resumable(self) -> Sequence[object]:
        return ()

    def resume(self, run_id: str) -> CheckpointRun:
        raise LookupError(run_id)


async def wait_for(pilot, condition, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError("condition not met in time")


def test_alert_to_report_on_real_engines(tmp_path: Path) -> None:
    backend = BACKENDS[0]
    data = tmp_path / "fleet" / "orders"
    with create_engine(data, backend=backend) as engine:
        for index in range(30):
            engine.put(f"order:{index}".encode(), b"paid")
    # A disk threshold every real volume exceeds: the disk alert fires for real.
    thresholds = Thresholds(disk_usage=0.0001)
    launcher = CheckpointLauncher({"orders": data})
    reports = tmp_path / "reports"
    app = DrConsoleApp(source=LocalSource([NodeSpec(name="orders", data_dir=data)], thresholds=thresholds),
                       thresholds=thresholds, refresh_seconds=0.2, launcher=launcher, report_dir=reports)

    async def main() -> Path | None:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.alerts)
            assert app.snapshot.alerts[0].rule == "disk-usage"
            await pilot.press("2")  # triage the selected node (opens the incident)
            for key in ("a", "n", "a"):  # can start: yes (probe); corruption: no (ours); disk: yes (probe)
                await pilot.press(key)
            assert [r.playbook_id for r in app.triage("orders").recommended()] == ["free-disk-space"]
            await pilot.press("enter")  # the recommended playbook, into Run
            await pilot.press("s")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            app.screen.query_one(Input).value = "orders"
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.run_state is not None and app.run_state.finished is not None)
            await pilot.press("4")
            await pilot.press("e")
            app.desk.flush(5)
            return next(reports.glob("*.md"), None)

    report = asyncio.run(main())
    assert app.run_state is not None and app.run_state.finished == RunFinished("succeeded")
    with open_engine(data.parent / "orders.checkpoint", mode="ro") as copy:
        assert copy.get(b"order:29") == b"paid"
    assert report is not None
    text = report.read_text()
    assert "- **Severity**: P1 (partial service degradation)" in text
    assert "Issue detected: critical: disk" in text
    assert "Is disk usage above the alert threshold? **yes**" in text
    assert "Is data corruption detected? **no**" in text
    assert "checkpoint confirmed by typing the node name" in text
    assert "- **Status**: open" in text and "Service restored" not in text
    incident = IncidentStore().load(app.incident.id)
    assert incident.status == "open"  # a run that says "succeeded" is not a verified recovery
    kinds = [event.kind for event in incident.events]
    assert kinds.index("alert") < kinds.index("opened") < kinds.index("triage") < kinds.index("playbook_chosen") \
        < kinds.index("confirmation") < kinds.index("export")
