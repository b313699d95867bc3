"""Drill: the scenario being played, the fault that was injected, the drill clock and the targets.

The screen the console opens on in drill mode (console.tui.drill_mode). The responder works the
incident with the usual screens (2 Triage, 3 Run); the drill clock line stays on every screen.
When a run succeeds the app checks the node's health; once healthy, the clock stops and the
measured RTO/RPO and the path of the drill report are shown here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.widgets import Static

from console.format import clock_text
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.drill_clock import DrillClock
from console.tui.widgets.key_bar import KeyBar
from console.tui.widgets.text import line

if TYPE_CHECKING:
    from console.tui.drill_mode import DrillApp

__all__ = ["DrillScreen"]


class DrillScreen(ConsoleScreen):
    """What is being drilled and how it is going; the keys of the other screens work from here."""

    SCREEN_LABEL = "Drill"
    DEFAULT_CSS = """
    #drill-body {
        height: 1fr;
        padding: 0 1;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("v", "app.check_recovery", "Check health"),
    ]
    """
    | Key(s) | Description |
    | :- | :- |
    | v | Check (verify) the node's health now (the clock stops when it is healthy). |
    """

    @property
    def drill_app(self) -> DrillApp:
        return cast("DrillApp", self.app)

    def compose(self) -> ComposeResult:
        yield self.status_bar()
        yield DrillClock()
        yield Static(id="drill-body")
        yield KeyBar()

    def on_mount(self) -> None:
        super().on_mount()
        self.watch(self.app, "drill_revision", self._show, init=True)

    def _show(self) -> None:
        app = self.drill_app
        drill, result = app.drill, app.drill_result
        scenario = drill.scenario
        lines = [
            line(
                "[b]Drill[/b] $scenario on [b]$engine[/b] · node [b]$node[/b]",
                scenario=scenario.name,
                engine=drill.engine,
                node=drill.node_name,
            ),
            line(
                "[dim]$description · reference: $reference[/dim]",
                description=scenario.description,
                reference=scenario.reference or "-",
            ),
            line(
                "Fault injected at $at: $fault",
                at=clock_text(drill.fault_wall, app.tz) + " UTC",
                fault=drill.fault_summary,
            ),
            line(
                "Load: $acked acknowledged writes before the fault (ledger kept outside the data dir)",
                acked=drill.acked_writes,
            ),
            line(
                "Targets: RTO $rto · RPO $rpo",
                rto=f"{scenario.console_target_rto_seconds:g} s (a person at the "
                f"keys; the unattended drill's: {scenario.target_rto_seconds:g} s)",
                rpo=f"{scenario.target_rpo_seconds:g} s"
                + (" (no acknowledged write lost)" if scenario.target_rpo_seconds == 0 else ""),
            ),
            Content(""),
        ]
        if result is None:
            lines.append(
                line(
                    "[b]Respond as you would for real:[/b] 2 triage the node · enter on a recommended "
                    "playbook · s start it · type the node name to confirm a destructive step."
                )
            )
            lines.append(line("The clock stops when a run leaves the node healthy (v: check now)."))
            if drill.checks:
                lines.append(line("[dim]last health check: $why[/dim]", why=drill.checks[-1]))
        else:
            verdict = "[b $status-ok]✔ PASS[/]" if result.passed else "[b $status-crit]✖ FAIL[/]"
            lines.append(
                line(
                    f"{verdict} recovered: measured RTO [b]$rto[/b] (target $target)",
                    rto=f"{result.rto_seconds:.1f} s",
                    target=f"{result.target_rto_seconds:g} s",
                )
            )
            lines.append(
                line(
                    "measured RPO [b]$rpo[/b]: $lost of $acked acknowledged writes lost",
                    rpo=f"{result.rpo_seconds:g} s",
                    lost=result.lost_writes,
                    acked=result.acked_writes,
                )
            )
            if app.drill_report is not None:
                lines.append(line("drill report: $path", path=str(app.drill_report)))
        self.query_one("#drill-body", Static).update(Content("\n").join(lines))
