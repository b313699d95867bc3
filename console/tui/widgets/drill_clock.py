"""The drill's one line: the scenario, the drill clock (time since the fault), the RTO target, the result."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from console.format import duration_text
from console.tui.widgets.text import line

__all__ = ["DrillClock", "drill_line"]


def drill_line(
    scenario: str,
    engine: str,
    elapsed: float,
    target_rto: float,
    target_rpo: float,
    result: object | None,
    checking: bool = False,
) -> Content:
    """The clock running ("fault 42s ago"), or stopped with the measured RTO/RPO and the verdict."""
    if result is None:
        state = "[b $status-warn]◌ checking health…[/]" if checking else "[b $status-warn]◌ not recovered[/]"
        return line(
            f"[b $status-crit]◉ DRILL[/] $scenario/$engine · [b]$elapsed[/b] since fault · RTO ≤ $rto · {state}",
            scenario=scenario,
            engine=engine,
            elapsed=duration_text(elapsed),
            rto=f"{target_rto:g} s",
        )
    rto = getattr(result, "rto_seconds", None)
    lost = getattr(result, "lost_writes", 0)
    acked = getattr(result, "acked_writes", 0)
    rpo = getattr(result, "rpo_seconds", 0.0)
    passed = bool(getattr(result, "passed", False))
    verdict = "[b $status-ok]✔ PASS[/]" if passed else "[b $status-crit]✖ FAIL[/]"
    # The RPO target is on the Drill screen; this line keeps to 80 columns.
    return line(
        f"{verdict} DRILL $scenario/$engine · RTO [b]$rto[/b] (≤ $target) · RPO [b]$rpo[/b], $lost/$acked lost",
        scenario=scenario,
        engine=engine,
        rto=f"{rto:.1f} s" if rto is not None else "-",
        target=f"{target_rto:g} s",
        rpo=f"{rpo:g} s",
        lost=lost,
        acked=acked,
    )


class DrillClock(Widget):
    """Shows the app's drill (``app.drill``, ``app.drill_result``); redrawn each second. No bindings."""

    DEFAULT_CSS = """
    DrillClock {
        height: 1;
        padding: 0 1;
        background: $panel;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    text: reactive[Content] = reactive(Content(""))

    def on_mount(self) -> None:
        self.watch(self.app, "now", self._refresh_line, init=True)
        self.watch(self.app, "drill_revision", self._refresh_line, init=False)

    def _refresh_line(self) -> None:
        drill = getattr(self.app, "drill", None)
        if drill is None:
            return
        result = getattr(self.app, "drill_result", None)
        scenario = drill.scenario
        now = getattr(self.app, "now", None)
        # The app's clock (frozen in tests), like every other clock on screen; the measured RTO is monotonic.
        elapsed = (now - drill.fault_wall).total_seconds() if now is not None else drill.elapsed()
        self.text = drill_line(
            scenario.name,
            drill.engine,
            elapsed,
            scenario.console_target_rto_seconds,
            scenario.target_rpo_seconds,
            result,
            bool(getattr(self.app, "drill_checking", False)),
        )

    def render(self) -> Content:
        return self.text
