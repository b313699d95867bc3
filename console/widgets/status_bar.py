"""The one-line bar at the top of every screen: where you are, the fleet at a glance, the incident clock."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from textual.content import Content
from textual.reactive import reactive, var
from textual.widget import Widget

from console.format import HEALTH_STYLE, clock_text, duration_text, local_clock_text
from console.widgets.text import line, spread
from playbooks.fleet import FleetSnapshot, Health
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
    now: var[datetime | None] = var(None)
    text: reactive[Content] = reactive(Content(""))

    def __init__(self, *, tz: tzinfo | None = None, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.tz = tz

    def _watch_inputs(self) -> None:
        if self.is_mounted:
            self.text = self._compose_text()

    watch_screen_name = watch_mode = watch_snapshot = watch_incident = watch_now = _watch_inputs

    def on_resize(self) -> None:
        self._watch_inputs()

    def render(self) -> Content:
        return self.text

    def _compose_text(self) -> Content:
        left = line("[b]drconsole[/b] · $screen" + (" · [b $status-warn]$mode[/]" if self.mode else ""),
                    screen=self.screen_name, mode=self.mode)
        parts: list[Content] = []
        width = self.content_size.width or 80
        snapshot = self.snapshot
        if snapshot is not None:
            counts = {health: 0 for health in Health}
            for node in snapshot.nodes:
                counts[node.health] += 1
            tallies = [f"[${HEALTH_STYLE[health][2]}]{count}{HEALTH_STYLE[health][0]}[/]"
                       for health, count in counts.items() if count]
            prefix = f"{len(snapshot.nodes)} nodes " if width >= 100 else ""
            parts.append(line(prefix + " ".join(tallies)))
        incident, now = self.incident, self.now
        if incident is not None and now is not None:
            moment = now.timestamp()
            elapsed = incident.clock_seconds(moment)
            if incident.status == "resolved":
                late = not incident.within_target(moment)
                verdict = "[$status-warn]✔ restored late[/]" if late else "[$status-ok]✔ restored[/]"
                if incident.lost():  # the service is back, not all of its data: say so where the clock is
                    verdict += " [b $status-crit]⚠ data lost[/]"
            elif incident.status == "closed":
                verdict = "■ closed"
            elif incident.within_target(moment):
                verdict = "[$status-ok]✔ on time[/]"
            else:
                verdict = "[b $status-crit]✖ OVER[/]"
            name = "$id " if width >= 100 else ""  # the id is on the Timeline when the bar is narrow
            parts.append(line(f"[b]$severity[/b] {name}RTO $elapsed/$target {verdict}", severity=incident.severity,
                              id=incident.id, elapsed=duration_text(elapsed),
                              target=duration_text(incident.target_rto_seconds)))
        # Seconds only while an incident's clock runs: an idle board then changes once a minute.
        if now is not None:
            clock = clock_text(now, self.tz)
            zone = now.astimezone(self.tz or UTC).tzname() or ""
            clock = f"{clock if incident is not None and incident.is_open else clock[:5]} {zone}".rstrip()
            local = local_clock_text(now) if self.tz is None and width >= 110 else None
            parts.append(Content(f"{clock} ({local})" if local else clock))
        right = Content(" │ ").join(part for part in parts if part.cell_length)
        return spread(left, right, width)
