"""Read-only and dashboard modes: every key and every palette command, and nothing changes on disk.

The fleet is real (engines in tmp dirs, read by LocalSource through the refresh worker); the
check is a digest of every file and directory under the fleet, the report directory and the
working directory, before and after.
"""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import pytest
from console_testkit import tree_digest
from support import available_backends
from textual.binding import Binding

from console.adapters.run_adapter import RunLauncher
from console.adapters.triage_view import Recommendation
from console.tui.app import DrConsoleApp
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.dashboard import DashboardScreen
from console.tui.screens.help import HelpScreen
from console.tui.screens.overview import OverviewScreen
from console.tui.screens.run import RunScreen
from console.tui.screens.timeline import TimelineScreen
from console.tui.screens.triage import TriageScreen
from console.tui.widgets.node_card import NodeCard
from engines import create_engine
from fleet import LocalSource, NodeSpec, Thresholds

BACKENDS = available_backends()
pytestmark = pytest.mark.skipif(not BACKENDS, reason="no backend built yet")


class SpyLauncher(RunLauncher):
    """The real launcher, recording every call: in read-only mode the app must not even hold it."""

    def __init__(self, specs: list[NodeSpec]) -> None:
        super().__init__(specs)
        self.calls: list[str] = []

    def plan(self, playbook_id, node):
        self.calls.append(f"plan {playbook_id}")
        return super().plan(playbook_id, node)

    def start(self, playbook_id, node):
        self.calls.append(f"start {playbook_id}")
        return super().start(playbook_id, node)

    def resume(self, node):
        self.calls.append(f"resume {node}")
        return super().resume(node)


def every_key() -> list[str]:
    keys: list[str] = []
    for owner in (
        DrConsoleApp,
        OverviewScreen,
        NodeCard,
        TriageScreen,
        RunScreen,
        TimelineScreen,
        DashboardScreen,
        HelpScreen,
        ConfirmScreen,
    ):
        for binding in owner.BINDINGS:
            if isinstance(binding, Binding):
                keys += [key.strip() for key in binding.key.split(",")]
    keys += [
        "enter",
        "space",
        "tab",
        "shift+tab",
        "up",
        "down",
        "left",
        "right",
        "escape",
        "ctrl+s",
        "ctrl+c",
        "ctrl+e",
        "e",
        "s",
        "r",
        "c",
        "x",
        "delete",
        "backspace",
        "f1",
        "ctrl+d",
    ]
    return [key for key in dict.fromkeys(keys) if key not in ("ctrl+q", "ctrl+p")]


@pytest.fixture
def fleet(tmp_path: Path) -> tuple[Path, list[NodeSpec]]:
    root = tmp_path / "fleet"
    specs = []
    for backend in BACKENDS:
        with create_engine(root / backend, backend=backend) as engine:
            for index in range(20):
                engine.put(f"k{index}".encode(), b"v" * 50)
        specs.append(NodeSpec(name=f"n-{backend}", data_dir=root / backend))
    return root, specs


@pytest.mark.parametrize("mode", ["dashboard", "read-only"])
def test_every_key_and_every_palette_command_changes_nothing(
    tmp_path: Path, fleet, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, specs = fleet
    reports = tmp_path / "reports"
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    before = tree_digest(tmp_path)
    spy = SpyLauncher(specs)
    # Thresholds that fire, so that there are alerts, a triage, and playbooks to refuse.
    source = LocalSource(specs, thresholds=Thresholds(disk_usage=0.0001))
    app = DrConsoleApp(
        source=source,
        mode="dashboard" if mode == "dashboard" else "interactive",
        read_only=mode == "read-only",
        thresholds=Thresholds(disk_usage=0.0001),
        refresh_seconds=0.25,
        launcher=spy,
        report_dir=reports,
    )
    screens: set[str] = set()
    titles: list[str] = []

    async def main() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            for _ in range(100):
                if app.snapshot is not None:
                    break
                await pilot.pause(0.02)
            for key in every_key():
                await pilot.press(key)
                screens.add(type(app.screen).__name__)
            # The palette route: every command the palette offers, run as the palette would.
            titles.extend(command.title for command in app.get_system_commands(app.screen))
            for command in app.get_system_commands(app.screen):
                if command.title in ("Quit", "Theme"):
                    continue
                result = command.callback()
                if inspect.isawaitable(result):
                    await result
                await pilot.pause()
                screens.add(type(app.screen).__name__)
            # And the action layer itself, called directly as a bug or a future binding might.
            app.choose_playbook(Recommendation("free-disk-space", "Free disk space", destructive=True), specs[0].name)
            app.action_start_run()
            app.action_resume_run()
            assert app.action_export_report() is None
            await pilot.pause(0.3)

    asyncio.run(main())
    assert spy.calls == []
    assert app.launcher is None
    assert app.run_session is None
    assert not reports.exists()
    if mode == "dashboard":
        assert screens <= {"DashboardScreen", "HelpScreen"}
        assert titles == ["Help", "Quit", "Theme"]
    else:
        assert {"OverviewScreen", "TriageScreen", "RunScreen", "TimelineScreen"} <= screens
        assert "Start run" not in titles and "Export incident report" not in titles and "Overview" in titles
    assert tree_digest(tmp_path) == before
