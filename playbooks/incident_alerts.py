"""Alerts on the timeline: successive fleet snapshots become "alert raised" / "alert cleared" events.

    tracker = AlertTracker()
    for event in tracker.update(snapshot): ...        # IncidentEvent(kind "alert" | "alert_cleared", node=...)
    tracker.first_active_at("orders-a")               # when the oldest alert still firing there began

An alert is an event of the timeline, never a severity: the incident's severity is the diagnosis'.
The console writes the events of a node with an open incident to that incident, and keeps the
others as fleet events; when a diagnosis opens an incident, the alerts that led to it (from the
first one still firing) are written to it with their own times.
"""

from __future__ import annotations

from fleet import Alert, FleetSnapshot
from playbooks.incident_model import IncidentEvent

__all__ = ["AlertTracker"]


class AlertTracker:
    def __init__(self) -> None:
        self.active: dict[tuple[str, str], Alert] = {}
        self.raised_at: dict[tuple[str, str], float] = {}

    def update(self, snapshot: FleetSnapshot) -> list[IncidentEvent]:
        now = snapshot.taken_at.timestamp()
        current = {alert.key: alert for alert in snapshot.alerts}
        events = [
            IncidentEvent(
                now,
                "alert",
                f"{alert.severity.value}: {alert.message}",
                alert.node,
                data={"rule": alert.rule, "alert_severity": alert.severity.value},
            )
            for key, alert in current.items()
            if key not in self.active
        ]
        events += [
            IncidentEvent(now, "alert_cleared", f"cleared: {alert.message}", alert.node, data={"rule": alert.rule})
            for key, alert in self.active.items()
            if key not in current
        ]
        for key in current:
            self.raised_at.setdefault(key, now)
        for key in [key for key in self.raised_at if key not in current]:
            del self.raised_at[key]
        self.active = current
        return events

    def first_active_at(self, node: str | None = None) -> float | None:
        """When the oldest alert still firing (on ``node``, or anywhere) was raised."""
        times = [at for key, at in self.raised_at.items() if node is None or self.active[key].node == node]
        return min(times) if times else None
