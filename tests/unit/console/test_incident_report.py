"""The incident: severity, RTO clock, alert tracking, and the Markdown report in the guides' template."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from console.incident import AlertTracker, Incident, TimelineEvent, severity_for
from console.report import TODO, incident_report_markdown
from console_testkit import fixture_ticks
from playbooks.fleet import FleetSnapshot

T0 = datetime(2024, 5, 14, 12, 4, 0, tzinfo=UTC)


def test_severity_follows_the_guides_table() -> None:
    snapshot = fixture_ticks()[-1]
    assert severity_for(snapshot) == "P0"  # a node is down
    assert severity_for(FleetSnapshot(taken_at=T0)) == "P3"
    without_cache = snapshot.model_copy(update={"nodes": snapshot.nodes[:3]})
    assert severity_for(without_cache) == "P1"  # disk critical
    assert Incident.open(T0, "P1").target_rto_seconds == 3600


def test_alerts_enter_the_timeline_when_raised_and_when_cleared() -> None:
    ticks = fixture_ticks()
    tracker = AlertTracker()
    raised = tracker.update(ticks[0])
    assert {event.node for event in raised} == {"ledger", "orders-b"}
    # cache has been unreachable for 29 s at the first tick and 30 s at the second: node-down fires then.
    [down] = tracker.update(ticks[1])
    assert (down.node, down.text) == ("cache", "critical: unreachable since 12:03:31 UTC (threshold 30 s)")
    assert tracker.update(ticks[2]) == []
    cleared = tracker.update(FleetSnapshot(taken_at=T0 + timedelta(seconds=20)))
    assert [event.kind for event in cleared] == ["alert-cleared"] * 3
    assert tracker.first_active_at() is None


def test_the_rto_clock() -> None:
    incident = Incident.open(T0, "P0")
    assert incident.within_target(T0 + timedelta(minutes=15))
    assert not incident.within_target(T0 + timedelta(minutes=15, seconds=1))
    incident.resolved_at = T0 + timedelta(minutes=4)
    assert incident.elapsed_seconds(T0 + timedelta(hours=3)) == 240


def test_the_report_has_every_section_of_the_template_in_order_with_the_facts() -> None:
    incident = Incident.open(T0 + timedelta(seconds=5), "P1", "ledger")
    incident.events = [
        TimelineEvent(T0, "alert", "critical: disk 91 % used on /srv (threshold 85 %)", "ledger"),
        TimelineEvent(T0 + timedelta(seconds=5), "incident", "opened INC as P1", "ledger"),
        TimelineEvent(T0 + timedelta(seconds=30), "triage", "recommended: free-disk-space (Free disk space)", "ledger"),
        TimelineEvent(T0 + timedelta(seconds=40), "step", "recycle-wal succeeded", "ledger"),
        TimelineEvent(T0 + timedelta(seconds=50), "run", "free-disk-space succeeded", "ledger"),
    ]
    incident.triage_path = [("Can the service start?", True, "ledger answers", False),
                            ("Is disk usage above the alert threshold?", True, "disk 91% used", True)]
    incident.recommended = ["free-disk-space"]
    incident.playbook, incident.outcome = "free-disk-space", "succeeded"
    incident.resolved_at = T0 + timedelta(seconds=50)
    text = incident_report_markdown(incident, fixture_ticks()[-1], now=T0 + timedelta(minutes=5), tz=UTC)
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings == [
        f"# Incident Report: {incident.id}", "## Incident Summary", "## Timeline", "## Root Cause Analysis",
        "### What Happened", "### Why It Happened", "### Detection", "### Response", "## Resolution",
        "### Immediate Actions", "### Long-term Fixes", "## Lessons Learned", "### What Went Well",
        "### What Could Be Improved", "### Action Items", "## Prevention", "### Monitoring Improvements",
        "### Process Changes", "### Code Changes"]
    assert "- **Severity**: P1 (partial service degradation)" in text
    assert "- **Duration**: 45s (resolved)" in text
    assert "- 12:04:00 - Issue detected: critical: disk 91 % used on /srv (threshold 85 %) [ledger]" in text
    assert "- 12:04:05 - Response initiated: opened INC as P1 [ledger]" in text
    assert "- 12:04:30 - Root cause identified: recommended: free-disk-space" in text
    assert "- 12:04:50 - Fix applied: free-disk-space succeeded [ledger]" in text
    assert "- Is disk usage above the alert threshold? **yes** — disk 91% used (answer overridden by the responder)" \
        in text
    assert "- [ ] Verify the latest backup of orders-b (`drconsole backup verify`)." in text
    assert "- [ ] Review the probes whose answers were overridden." in text
    assert f"- **Affected Users**: {TODO}" in text
    assert "within target" in text
