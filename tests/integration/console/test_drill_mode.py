"""Drill mode: a real sandbox broken by the scenario's fault, a human responding through the keys.

The sandbox is the unattended drill's (sync engine, ledgered load, backup, archived WAL, the
fault injected); the console opens on it in drill mode. The test presses what a responder would:
2 (triage), the probes' answers accepted, enter on the recommended playbook, s (start), the node
name typed letter by letter in the confirmation dialog, enter. When the run leaves the node
healthy the clock stops and the measured RTO/RPO show on screen and in the drill report.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import pty
import select
import sys
import time
from pathlib import Path

import pytest
from console_testkit import screen_text
from rich.console import Console
from support import available_backends, run_cli_in_process
from test_real_playbooks import wait_for

from console.adapters.drill_sandbox import SandboxError, build_sandbox
from console.cli.main import main as cli_main
from console.tui.drill_mode import DrillApp, drill_app
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.drill import DrillScreen
from console.tui.screens.help import HelpScreen
from console.tui.screens.triage import TriageScreen
from console.tui.widgets.drill_clock import DrillClock
from engines.checks import verify_data_dir

pytestmark = pytest.mark.skipif("lsm" not in available_backends(), reason="the lsm backend is not built")
ROOT = Path(__file__).resolve().parents[3]


async def respond(app: DrillApp, pilot, node: str) -> None:  # type: ignore[no-untyped-def]
    """Triage with the probes' answers, run the first recommendation, confirm by typing ``node``."""
    await pilot.press("2")
    await wait_for(pilot, lambda: node in app.triage_sessions and isinstance(app.screen, TriageScreen))
    view = app.triage_sessions[node]
    while not view.current().is_leaf:
        await wait_for(pilot, lambda: view.probed(view.current().id) is not None)
        probe = view.probed(view.current().id)
        await pilot.press("a" if probe is not None and probe.answer is not None else "n")
    assert view.recommended(), "the walk recommends nothing"
    await pilot.press("enter")
    await wait_for(pilot, lambda: app.pending is not None)
    await pilot.press("s")
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
    await pilot.press(*node)
    await pilot.press("enter")
    await wait_for(pilot, lambda: app.run_state is not None and app.run_state.finished is not None)


def test_a_human_recovers_a_corrupt_sstable_and_the_drill_measures_rto_and_rpo(tmp_path: Path) -> None:
    drill = build_sandbox("sstable-corrupt", "lsm", writes=200, workdir=tmp_path)
    assert not verify_data_dir(drill.data_dir).ok
    report = tmp_path / "reports" / "drill.md"
    app = drill_app(drill, report_path=report)

    async def main() -> tuple[str, str, str, str]:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None and isinstance(app.screen, DrillScreen))
            await pilot.pause(0.1)
            opening = screen_text(app)
            for _round in range(3):  # a responder triages again when a run leaves the node unhealthy
                await respond(app, pilot, drill.node_name)
                await wait_for(pilot, lambda: not app.drill_checking, 60)
                await pilot.pause(0.1)
                if app.drill_result is not None:
                    break
            run_screen = screen_text(app)
            await pilot.press("5")
            await pilot.pause(0.2)
            measured = screen_text(app)
            await pilot.press("4")
            await pilot.pause(0.2)
            return opening, run_screen, measured, screen_text(app)

    opening, run_screen, measured, timeline = asyncio.run(main())
    assert "DRILL sstable-corrupt/lsm" in opening and "RTO ≤ 60 s" in opening and "Targets: RTO 60 s" in opening
    assert "◌ not recovered" in opening and drill.fault_summary[:30] in opening
    result = app.drill_result
    assert result is not None, (app.drill_runs, drill.checks)
    assert result.recovered and result.rto_seconds is not None and 0 < result.rto_seconds
    assert (result.lost_writes, result.rpo_seconds, result.acked_writes) == (0, 0.0, 200)
    assert result.playbooks and result.playbooks[-1]["status"] == "succeeded"
    assert result.triage and all(row["evidence"] for row in result.triage)
    # The clock line on the Run screen stopped on the measured figures.
    assert f"RTO {result.rto_seconds:.1f} s (≤ 60 s)" in run_screen  # a person's target (console_target_rto_seconds)
    assert "RPO 0 s, 0/200 lost" in run_screen
    assert f"measured RTO {result.rto_seconds:.1f} s" in measured and "0 of 200 acknowledged writes lost" in measured
    assert "drconsole · Timeline" in timeline and ("PASS DRILL" if result.passed else "FAIL DRILL") in timeline
    # The run's checks passed and the data dir opens (nobody serves a drill's): the runner resolved the incident.
    assert app.incident is not None and app.incident.status == "resolved"
    assert any(event.kind == "drill" and event.message.startswith("healthy again: RTO") for event in app.events)
    assert verify_data_dir(drill.data_dir).ok
    text = report.read_text()
    assert "| sstable-corrupt | lsm | 60 s |" in text and "| 0 |" in text
    assert f"- **Measured RTO**: {result.rto_seconds} s (target 60 s)" in text
    assert "0 of 200 acknowledged writes lost" in text
    assert "confirmed by typing the node name" in text
    saved = json.loads(report.with_suffix(".json").read_text())
    assert list(saved)[:9] == [
        "scenario",
        "engine",
        "rto_seconds",
        "rpo_seconds",
        "acked_writes",
        "lost_writes",
        "target_rto_seconds",
        "target_rpo_seconds",
        "passed",
    ]
    assert saved["lost_writes"] == 0 and saved["passed"] is result.passed
    drill.remove()


def test_the_clock_runs_on_every_screen_until_recovery(tmp_path: Path) -> None:
    drill = build_sandbox("wal-corrupt-middle", "lsm", writes=50, workdir=tmp_path)
    app = drill_app(drill, report_path=tmp_path / "r.md")

    async def main() -> list[int]:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, DrillScreen))
            counts = []
            for key in ("1", "2", "3", "4", "5"):
                await pilot.press(key)
                await pilot.pause(0.1)
                counts.append(len(app.screen.query(DrillClock)))
            titles = [command.title for command in app.get_system_commands(app.screen)]
            assert {"Drill", "Check health", "Triage"} <= set(titles)
            await pilot.press("question_mark")
            await pilot.pause(0.1)
            assert isinstance(app.screen, HelpScreen)
            rendered = Console(width=120, file=io.StringIO(), record=True)
            rendered.print(app.screen._content())  # the whole help, not only what fits at 80x24
            help_text = rendered.export_text()
            assert "drill" in help_text and "Check health" in help_text and "5     " in help_text
            return counts

    try:
        assert asyncio.run(main()) == [1, 1, 1, 1, 1]
        assert app.drill_result is None and not (tmp_path / "r.md").exists()
    finally:
        drill.remove()


@pytest.mark.parametrize(
    ("scenario", "needs"),
    [
        ("process-kill", "a node process"),
        ("primary-loss", "a primary and a standby"),
        ("disk-full", "its own small file system"),
    ],
)
def test_scenarios_beyond_one_data_dir_are_refused_before_anything_is_built(
    tmp_path: Path, scenario: str, needs: str
) -> None:
    with pytest.raises(SandboxError, match=f"{scenario} needs {needs}"):
        build_sandbox(scenario, "lsm", workdir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_drill_run_console_without_a_terminal_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRCONSOLE_FORCE_TUI", raising=False)
    result = run_cli_in_process(capsys, cli_main, "drill", "run", "sstable-corrupt", "--engine", "lsm", "--console")
    assert result.code == 2 and "needs a terminal" in result.err


@pytest.mark.slow
def test_drill_run_console_on_a_terminal_left_before_recovery_fails_and_cleans_up(tmp_path: Path) -> None:
    """The command itself on a pty: the console opens on the drill, ctrl+q before any recovery gives the
    contract's JSON with passed false and exit 1, and the sandbox is gone."""
    pid, master = pty.fork()
    if pid == 0:
        os.chdir(ROOT)
        os.environ.update({"TERM": "xterm-256color", "TMPDIR": str(tmp_path)})
        os.execv(
            sys.executable,
            [
                sys.executable,
                "-m",
                "console.cli",
                "drill",
                "run",
                "sstable-corrupt",
                "--engine",
                "lsm",
                "--console",
                "--writes",
                "50",
                "--json",
            ],
        )
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"since fault" not in seen and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                seen += os.read(master, 65536)
        assert b"since fault" in seen, seen[-2000:]
        os.write(master, b"\x11")  # ctrl+q
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(master)
    assert os.waitstatus_to_exitcode(status) == 1
    text = seen.decode(errors="replace")
    payload = json.loads(text[text.rindex('{"scenario"') :].splitlines()[0])  # after the app's last escape codes
    assert (payload["scenario"], payload["engine"], payload["passed"], payload["recovered"]) == (
        "sstable-corrupt",
        "lsm",
        False,
        False,
    )
    assert not list(tmp_path.glob("drill-console-*"))
