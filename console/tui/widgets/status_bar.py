"""The one-line bar at the top of every screen: where you are, the fleet at a glance, the incident clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, tzinfo

from textual.content import Content
from textual.reactive import reactive, var
from textual.widget import Widget

from console.format import LAGGING_STYLE, clock_text, duration_text, fleet_tally, local_clock_text
from console.tui.widgets.text import line, spread
from fleet import FleetSnapshot, Thresholds
from playbooks.incident_model import Incident

__all__ = ["StatusBar"]


class StatusBar(Widget):
    """Title, mode and screen on the left; node counts, the incident's RTO clock and the time on the right.

    No bindings: it only shows what it is given.
    """

    # The inputs are ``var``s and the line is the one ``reactive``: a tick that leaves the text as
    # it was (the clock shows minutes while no incident is open) sends nothing to the terminal.
    screen_name: var[str] = var("")
    mode: var[str] = var("")
    snapshot: var[FleetSnapshot | None] = var(None)
    incident: var[Incident | None] = var(None, always_update=True)
    elsewhere: var[int] = var(0)  # open incidents on targets that are not this fleet's
    now: var[datetime | None] = var(None)
    show_tally: var[bool] = var(True)  # the dashboard's header has the tally in large type
    text: reactive[Content] = reactive(Content(""))

    def __init__(
        self,
        *,
        tz: tzinfo | None = None,
        thresholds: Thresholds | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.tz = tz
        self.thresholds = thresholds or Thresholds()
        self.rto_clock: Callable[[Incident, float], tuple[float, float, str]] = self.incident_clock

    @staticmethod
    def incident_clock(incident: Incident, moment: float) -> tuple[float, float, str]:
        """(elapsed, target, state) of ``incident``'s RTO clock: "on time", "over", "restored",
        "restored late" or "closed". Drill mode gives the drill's clock instead (``rto_clock``)."""
        elapsed = incident.clock_seconds(moment)
        within = incident.within_target(moment)
        if incident.status == "resolved":
            return elapsed, incident.target_rto_seconds, "restored" if within else "restored late"
        if incident.status == "closed":
            return elapsed, incident.target_rto_seconds, "closed"
        return elapsed, incident.target_rto_seconds, "on time" if within else "over"

    def _watch_inputs(self) -> None:
        if self.is_mounted:
            self.text = self._compose_text()

    watch_screen_name = watch_mode = watch_snapshot = watch_incident = watch_now = watch_show_tally = _watch_inputs
    watch_elsewhere = _watch_inputs

    def on_resize(self) -> None:
        self._watch_inputs()

    def render(self) -> Content:
        return self.text

    def _compose_text(self) -> Content:
        left = line(
            "[b]drconsole[/b] · $screen" + (" · [b $status-warn]$mode[/]" if self.mode else ""),
            screen=self.screen_name,
            mode=self.mode,
        )
        parts: list[Content] = []
        width = self.content_size.width or 80
        snapshot = self.snapshot
        if snapshot is not None and self.show_tally:
            # A symbol per state; "lag" beside LAGGING's, which shares DEGRADED's warning triangle.
            tallies = [
                f"[${variable}]{count}{symbol}{'lag' if (symbol, word, variable) == LAGGING_STYLE else ''}[/]"
                for (symbol, word, variable), count in fleet_tally(snapshot, self.thresholds)
            ]
            prefix = f"{len(snapshot.nodes)} nodes " if width >= 100 else ""
            parts.append(line(prefix + " ".join(tallies)))
        incident, now = self.incident, self.now
        if incident is not None and now is not None:
            elapsed, target, state = self.rto_clock(incident, now.timestamp())
            verdict = {
                "restored late": "[$status-warn]✔ restored late[/]",
                "restored": "[$status-ok]✔ restored[/]",
                "closed": "■ closed",
                "on time": "[$status-ok]✔ on time[/]",
            }.get(state, "[b $status-crit]✖ OVER[/]")
            if state in ("restored", "restored late") and incident.lost():
                verdict += " [b $status-crit]⚠ data lost[/]"  # the service is back, not all of its data
            name = "$id " if width >= 100 else ""  # the id is on the Timeline when the bar is narrow
            parts.append(
                line(
                    f"[b]$severity[/b] {name}RTO $elapsed/$target {verdict}",
                    severity=incident.severity,
                    id=incident.id,
                    elapsed=duration_text(elapsed),
                    target=duration_text(target),
                )
            )
        if self.elsewhere:
            parts.append(line("[$status-warn]+$count open elsewhere[/]", count=str(self.elsewhere)))
        # Seconds only while an incident's clock runs: an idle board then changes once a minute.
        if now is not None:
            clock = clock_text(now, self.tz)
            zone = now.astimezone(self.tz or UTC).tzname() or ""
            clock = f"{clock if incident is not None and incident.is_open else clock[:5]} {zone}".rstrip()
            local = local_clock_text(now) if self.tz is None and width >= 110 else None
            parts.append(Content(f"{clock} ({local})" if local else clock))
        right = Content(" │ ").join(part for part in parts if part.cell_length)
        return spread(left, right, width)
