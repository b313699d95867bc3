"""The whole flow on real engines: alert -> triage -> recommended playbook -> confirm -> verified -> report.

The fleet is a real data directory (with a real corrupt table) read by LocalSource through the
refresh worker; the run is the playbooks' runner through the console's one launcher, and the
destructive repair runs once the responder has typed the node name.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from support import available_backends
from textual.widgets import Input

from console.adapters.run_adapter import RunLauncher
from console.adapters.triage_adapter import PlaybookTriage
from console.tui.app import DrConsoleApp
from console.tui.screens.confirm import ConfirmScreen
from engines import create_engine
from engines.checks import verify_data_dir
from faults import inject
from fleet import LocalSource, NodeSpec, Thresholds
from playbooks.incident_store import IncidentStore

FAULT = {"lsm": "sstable-corrupt", "cow": "page-corrupt", "rocksdb": "sst-corrupt"}
BACKENDS = [backend for backend in available_backends() if backend in FAULT]
pytestmark = pytest.mark.skipif(not BACKENDS, reason="no backend built yet")


async def wait_for(pilot, condition, seconds: float = 60.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError("condition not met in time")


def test_alert_to_report_on_real_engines(tmp_path: Path) -> None:
    backend = BACKENDS[0]
    data = tmp_path / "fleet" / "orders"
    with create_engine(data, backend=backend) as engine:
        for index in range(300):
            engine.put(f"order:{index:04d}".encode(), b"paid" * 20)
    inject(FAULT[backend], data, seed=5)
    # A disk threshold every real volume exceeds: the disk alert fires for real.
    thresholds = Thresholds(disk_usage=0.0001)
    spec = NodeSpec(name="orders", engine=backend, data_dir=data)
    launcher = RunLauncher([spec])
    reports = tmp_path / "reports"
    app = DrConsoleApp(
        source=LocalSource([spec], thresholds=thresholds),
        thresholds=thresholds,
        refresh_seconds=0.2,
        launcher=launcher,
        report_dir=reports,
        triage_factory=lambda snapshot, node: PlaybookTriage(
            node, data, snapshot=snapshot, specs=[spec], thresholds=thresholds
        ),
    )

    async def main() -> Path | None:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.alerts)
            assert app.snapshot.alerts[0].rule == "disk-usage"
            await pilot.press("2")  # triage the selected node (a fault found opens the incident)
            # The real tree on the real data dir: accept each probe's answer down to the leaf.
            for _ in range(100):
                view = app.triage_sessions.get("orders")
                if view is not None and view.current().is_leaf:
                    break
                if view is not None and view.probed(view.current().id) is not None:
                    await pilot.press("a")
                await pilot.pause(0.05)
            assert [r.playbook_id for r in app.triage("orders").recommended()][0] == "data-recovery"
            await pilot.press("enter")  # the recommended playbook, into Run
            await pilot.press("s")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            app.screen.query_one(Input).value = "orders"
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.run_state is not None and app.run_state.done)
            # Nobody serves this data dir: the runner resolved the incident once its checks passed and it opened.
            await wait_for(pilot, lambda: app.incident is not None and app.incident.status == "resolved")
            await pilot.press("4")
            await pilot.press("e")
            app.desk.flush(5)
            return next(reports.glob("*.md"), None)

    report = asyncio.run(main())
    assert app.run_state is not None and app.run_state.status == "succeeded" and app.run_state.verified is not None
    assert verify_data_dir(data).ok
    assert report is not None
    text = report.read_text()
    assert "- **Severity**: P0" in text  # data corruption: P0 (playbooks/severity.py), whatever the disk alert said
    assert "Is data corruption detected? **yes**" in text
    assert "repair confirmed by typing the node name" in text
    assert "data-recovery succeeded" in text
    incident = IncidentStore().load(app.incident.id)
    assert incident.status == "resolved"  # verified: checks passed and the data dir opened
    kinds = [event.kind for event in incident.events]
    assert (
        kinds.index("alert")
        < kinds.index("opened")
        < kinds.index("triage")
        < kinds.index("playbook_chosen")
        < kinds.index("confirmation")
        < kinds.index("run_finished")
        < kinds.index("export")
    )
