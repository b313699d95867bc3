"""Drill mode: the console on a drill's sandbox, with a human responding and the drill clock running.

    drconsole drill run SCENARIO --engine E --console [--keep] [--json]

The sandbox is built and loaded and the fault injected (console.adapters.drill_sandbox, the same scenario as
the unattended drill); then ``DrillApp`` opens on the Drill screen. The responder triages and runs
playbooks with the usual screens; the clock line (console.tui.widgets.drill_clock) stays on each of
them. When a run succeeds (or on ``v``) a worker checks the node's health the drill's way; once it
is healthy the clock stops, and the measured RTO/RPO are shown and written to the drill report
(Markdown, plus the ``drill run --json`` object beside it). On exit the command prints the result
as ``drill run`` does and removes the sandbox (unless ``--keep``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import SystemCommand
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import var
from textual.screen import Screen

from console.adapters.drill_sandbox import (
    DrillSandbox,
    SandboxError,
    build_sandbox,
    measure,
    state_dir_of,
    write_report,
)
from console.adapters.run_adapter import RunLauncher
from console.adapters.triage_adapter import PlaybookTriage
from console.format import clock_text
from console.output import EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, Output
from console.tui.app import DrConsoleApp
from console.tui.launch import has_terminal, launch, no_terminal
from console.tui.screens.base import ConsoleScreen
from console.tui.screens.drill import DrillScreen
from console.tui.themes import load_theme
from console.tui.widgets.drill_clock import DrillClock
from console.tui.widgets.status_bar import StatusBar
from drills import DrillResult
from engines.errors import DrconsoleError
from engines.fsutil import atomic_write_text
from fleet import LocalSource, NodeSpec, Thresholds
from playbooks.state import StateDir, current_actor

__all__ = ["DrillApp", "DrillChecked", "drill_app", "default_report_path", "run_drill_console"]


class DrillChecked(Message):
    """The health check finished: ``result`` once the node is healthy (the report written), else None and why."""

    def __init__(self, result: DrillResult | None, why: str, report: Path | None = None) -> None:
        super().__init__()
        self.result = result
        self.why = why
        self.report = report


class DrillApp(DrConsoleApp):
    """The console in drill mode: opens on the Drill screen; the clock line is on every screen."""

    SCREENS: ClassVar[dict[str, Callable[[], Screen[Any]]]] = {**DrConsoleApp.SCREENS, "drill": DrillScreen}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("5", "show_drill", "Drill"),
        Binding("v", "check_recovery", "Check health", show=False),  # "h" is the previous card
    ]
    """
    | Key(s) | Description |
    | :- | :- |
    | 5 | The Drill screen: scenario, fault, clock, targets, measured RTO/RPO. |
    | v | Check (verify) the node's health now. |
    """

    drill_revision: var[int] = var(0)

    def __init__(self, drill: DrillSandbox, *, report_path: Path, **options: Any) -> None:
        super().__init__(**options)
        self.drill = drill
        self.report_path = report_path
        self.drill_result: DrillResult | None = None
        self.drill_report: Path | None = None
        self.drill_checking = False
        self.drill_runs: list[dict[str, Any]] = []
        self._finished_runs: set[int] = set()

    def on_mount(self) -> None:
        # DrConsoleApp.on_mount runs too (Textual calls each class's handler); this one runs first.
        self.screen_change_signal.subscribe(self, self._attach_clock)
        self.watch(self, "run_revision", self._run_changed, init=False)
        self.call_later(self.action_show_drill)

    def get_system_commands(self, screen: Screen[object]) -> Sequence[SystemCommand]:  # type: ignore[override]
        return [
            *super().get_system_commands(screen),
            SystemCommand(
                "Drill", "The drill: scenario, fault, clock, targets, measured RTO/RPO (5)", self.action_show_drill
            ),
            SystemCommand(
                "Check health",
                "Drill: check the node's health now; the clock stops when healthy (v)",
                self.action_check_recovery,
            ),
        ]

    def rto_clock(self, incident: Any, moment: float) -> tuple[float, float, str]:
        """The header's RTO clock in a drill is the drill's: from the fault (not from the triage that opened
        the incident) against the scenario's console target, stopped at the measured RTO."""
        target = self.drill.scenario.console_target_rto_seconds
        result = self.drill_result
        if result is not None and result.rto_seconds is not None:
            return result.rto_seconds, target, "restored" if result.rto_seconds <= target else "restored late"
        elapsed = max(0.0, moment - self.drill.fault_wall.timestamp())
        return elapsed, target, "on time" if elapsed <= target else "over"

    def action_show_drill(self) -> None:
        self.switch_screen("drill")

    def _attach_clock(self, screen: Screen[Any]) -> None:
        # Every main screen gets the clock line under its status bar, once, when first shown.
        if isinstance(screen, ConsoleScreen) and not isinstance(screen, DrillScreen):
            self.call_after_refresh(self._mount_clock, screen)

    def _mount_clock(self, screen: ConsoleScreen) -> None:
        if screen.is_attached and not screen.query(DrillClock):
            bars = screen.query(StatusBar)
            if bars:
                screen.mount(DrillClock(), after=bars.first())
            else:
                screen.mount(DrillClock())

    # ---------------------------------------------------------------- the clock stops when the node is healthy
    def _run_changed(self) -> None:
        state = self.run_state
        if state is None or not state.done or id(state) in self._finished_runs:
            return
        self._finished_runs.add(id(state))
        self.drill_runs.append({"playbook": state.playbook_id, "status": state.outcome})
        # The probes saw the data dir before the run: a new walk starts from what it is now.
        self.triage_sessions.pop(state.node, None)
        if state.outcome == "succeeded" and self.drill_result is None:
            self.action_check_recovery()

    def action_check_recovery(self) -> None:
        if self.drill_result is not None:
            self.notify("the node has recovered; the drill is measured", title="drill")
            return
        if self.run_state is not None and self.run_state.running:
            self.notify("a run is under way: the health check waits for it to finish", severity="warning")
            return
        self.drill_checking = True
        self.drill_revision += 1
        timeline = [f"{clock_text(event.at, self.tz)} {event.kind}: {event.message}" for event in self.timeline()]
        self._check_recovery(self._triage_rows(), timeline)

    def _triage_rows(self) -> list[dict[str, Any]]:
        incident = self.incident_for(self.drill.node_name)
        rows = incident.answers() if incident is not None else []
        return [
            {
                "question": row.question,
                "answer": "yes" if row.answer else "no",
                "evidence": row.evidence,
                "overridden": row.overridden,
            }
            for row in rows
        ]

    @work(thread=True, exclusive=True, group="drill-health", exit_on_error=False)
    def _check_recovery(self, triage: list[dict[str, Any]], timeline: list[str]) -> None:
        """The drill's health check, and on success the RPO count and the report (all blocking: a thread)."""
        result, why = measure(self.drill, playbooks=list(self.drill_runs), triage=triage)
        report = None
        if result is not None:
            report = write_report(result, self.report_path, responder=current_actor().describe(), timeline=timeline)
            atomic_write_text(
                report.with_suffix(".json"), json.dumps(result.contract_json(), indent=2, default=str) + "\n"
            )
        self.post_message(DrillChecked(result, why, report))

    def on_drill_checked(self, message: DrillChecked) -> None:
        self.drill_checking = False
        node = self.drill.node_name
        if message.result is None:
            self.record("drill", f"health check: not healthy yet ({message.why})", node)
            self.notify(
                f"{message.why}\ntriage again (2) from what the data dir is now",
                title="not healthy yet",
                severity="warning",
            )
        else:
            result = message.result
            self.drill_result, self.drill_report = result, message.report
            self.record(
                "drill",
                f"healthy again: RTO {result.rto_seconds:.1f} s, RPO {result.rpo_seconds:g} s "
                f"({result.lost_writes}/{result.acked_writes} writes lost); "
                f"{'PASS' if result.passed else 'FAIL'}",
                node,
            )
            self.notify(
                f"RTO {result.rto_seconds:.1f} s · RPO {result.lost_writes} writes lost\n{message.report}",
                title="drill: recovered",
            )
        self.drill_revision += 1


def default_report_path(scenario: str, engine: str) -> Path:
    """Where the report goes by default: the responder's state dir (the sandbox's own is removed)."""
    return StateDir().root / "drills" / f"{time.strftime('%Y%m%d-%H%M%S')}-{scenario}-{engine}.md"


def drill_app(
    drill: DrillSandbox, *, report_path: Path, theme: str | None = None, watch_terminal: bool = False
) -> DrillApp:
    """The console on the sandbox's one node: local source, the playbooks' tree and runner, its backups."""
    spec = NodeSpec(name=drill.node_name, engine=drill.engine, data_dir=drill.data_dir, backup_repo=drill.repo)
    thresholds = Thresholds()
    launcher = RunLauncher([spec])

    def triage_factory(snapshot: Any, node: str) -> PlaybookTriage:
        return PlaybookTriage(
            node,
            drill.data_dir,
            snapshot=snapshot,
            library=launcher.library,
            repo=drill.repo,
            specs=[spec],
            thresholds=thresholds,
        )

    return DrillApp(
        drill,
        report_path=report_path,
        source=LocalSource([spec], thresholds=thresholds),
        theme=load_theme(theme or "dark"),
        thresholds=thresholds,
        launcher=launcher,
        triage_factory=triage_factory,
        report_dir=report_path.parent,
        watch_terminal=watch_terminal,
        notice=f"DRILL {drill.scenario.name} on {drill.engine}: sandbox {drill.root}",
    )


def run_drill_console(args: argparse.Namespace, engine: str, output: Output | None = None) -> int:
    """``drill run SCENARIO --console``: build the sandbox, open the console on it, print the result."""
    out = output if output is not None else Output(json_mode=bool(getattr(args, "json", False)))
    if not has_terminal():
        return no_terminal()  # before building anything
    report_path = Path(getattr(args, "drill_report", None) or default_report_path(args.scenario, engine)).absolute()

    def log(text: str) -> None:
        sys.stderr.write(f"    {text}\n")
        sys.stderr.flush()

    try:
        drill = build_sandbox(
            args.scenario,
            engine,
            writes=int(getattr(args, "writes", 500)),
            value_size=int(getattr(args, "value_size", 128)),
            seed=int(getattr(args, "seed", 1)),
            log=log,
        )
    except SandboxError as exc:
        return out.error(
            f"drill run --console: {exc}", hint="see `drconsole drill list`", exit_code=EXIT_USAGE, kind="UsageError"
        )
    except DrconsoleError as exc:
        return out.error(
            f"drill run --console: {exc.message}", hint=exc.hint, exit_code=exc.exit_code, kind=type(exc).__name__
        )
    try:
        with state_dir_of(drill):
            app = drill_app(drill, report_path=report_path, theme=getattr(args, "theme", None), watch_terminal=True)
            launch(app)
    finally:
        if not getattr(args, "keep", False):
            drill.remove()
    result = app.drill_result
    if result is None:
        payload = {
            "scenario": drill.scenario.name,
            "engine": engine,
            "rto_seconds": None,
            "rpo_seconds": None,
            "acked_writes": drill.acked_writes,
            "lost_writes": None,
            "target_rto_seconds": drill.scenario.console_target_rto_seconds,
            "target_rpo_seconds": drill.scenario.target_rpo_seconds,
            "passed": False,
            "recovered": False,
            "health": drill.checks[-1] if drill.checks else "not checked",
        }
        out.result(
            payload,
            f"FAIL {drill.scenario.name} on {engine}: the console was left before the node was "
            f"healthy again" + (f"\n  sandbox kept: {drill.root}" if getattr(args, "keep", False) else ""),
        )
        return EXIT_PROBLEM
    payload = {**result.contract_json(), "report": str(report_path)}
    verdict = "PASS" if result.passed else "FAIL"
    out.result(
        payload,
        f"{verdict} {result.scenario} on {result.engine} (responded in the console): RTO "
        f"{result.rto_seconds:.2f} s (target {result.target_rto_seconds:g} s), RPO "
        f"{result.lost_writes}/{result.acked_writes} acknowledged writes lost, "
        f"{result.rpo_seconds:g} s\n  drill report: {report_path}",
    )
    return EXIT_OK if result.passed else EXIT_PROBLEM
