"""The incident report: the reference guides' "Incident Report Template", filled from the incident.

    text = report_markdown(store.load("INC-20261206-002"))            # drconsole incident report
    text = report_markdown(incident, now=..., tz=console_zone)         # the console's export (e)

One generator for the console and the CLI. Sections: Incident Summary, Timeline, Root Cause
Analysis, Resolution, Lessons Learned (with Action Items) and Prevention. Every fact the incident
holds is filled in; what only people know is a marked blank for the postmortem. "Data lost" is the
runs' own final accounting (``playbooks.accounting``): what no step brought back, and where it is
kept; never a count a step reported before a later one re-applied it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo

from playbooks.incident_model import Incident, IncidentEvent, duration_text

__all__ = ["report_markdown", "TODO"]

Clock = Callable[[float], str]  # epoch seconds -> "HH:MM:SS" in the report's zone

TODO = "_(to be completed in the postmortem)_"


def report_markdown(incident: Incident, *, now: float | None = None, tz: tzinfo | None = None) -> str:
    """The Markdown report of ``incident`` as of ``now`` (default: the current time); times in ``tz`` (UTC)."""
    now = time.time() if now is None else now
    zone = tz or UTC

    def clock(moment: float) -> str:
        return datetime.fromtimestamp(moment, zone).strftime("%H:%M:%S")

    events = incident.events
    alerts = [event for event in events if event.kind == "alert"]
    clock_seconds = incident.clock_seconds(now)
    verdict = "within target" if clock_seconds <= incident.target_rto_seconds else "target missed"
    nodes = sorted(
        {event.node for event in events if event.node and event.kind in ("alert", "alert_cleared")} | {incident.target}
    )
    who = sorted({event.user for event in events if event.user and event.kind not in ("alert", "alert_cleared")})
    lines = [
        f"# Incident Report: {incident.id}",
        "",
        "## Incident Summary",
        f"- **Date**: {datetime.fromtimestamp(incident.opened_at, zone):%Y-%m-%d}",
        f"- **Duration**: {duration_text(clock_seconds)} ({_state(incident)})",
        f"- **Severity**: {incident.severity} ({incident.meaning})",
        f"- **Status**: {_status_line(incident, clock)}",
        f"- **Affected Nodes**: {', '.join(nodes)}",
        f"- **Affected Users**: {TODO}",
        f"- **Root Cause**: {_root_cause(incident)}",
        f"- **RTO**: {duration_text(clock_seconds)} against a target of {duration_text(incident.target_rto_seconds)}"
        f" ({incident.rto_basis}): {verdict}" + ("" if incident.status != "open" else ", clock still running"),
        f"- **Data Lost**: {_data_lost(incident)}",
        f"- **Playbooks**: {_runs_line(incident)}",
    ]
    if who:
        lines.append(f"- **Responders**: {', '.join(who)}")
    lines += ["", f"## Timeline ({_zone_name(zone, incident.opened_at)})"]
    lines += [f"- {clock(moment)} - {label}" for moment, label in _milestones(incident)]
    lines += ["", "### Every event"]
    lines += [_event_line(event, clock) for event in events]
    lines += ["", "## Root Cause Analysis", "### What Happened"]
    lines += [
        f"- {clock(event.time)} {event.message}" + (f" [{event.node}]" if event.node else "") for event in alerts
    ] or ["- No alert fired before the diagnosis opened the incident."]
    lines += ["", "### Why It Happened"]
    lines += [
        f"- {answer.question} **{_word(answer.answer)}**"
        + (f" — {answer.evidence}" if answer.evidence else "")
        + (" (answer overridden by the responder)" if answer.overridden else "")
        + f" [{clock(answer.at)}"
        + (f", {answer.who}" if answer.who else "")
        + "]"
        for answer in incident.answers()
    ] or [f"- {TODO}"]
    lines += ["", "### Detection"]
    lines.append(
        f"- First detected at {clock(alerts[0].time)} by the alert rules: {alerts[0].message}."
        if alerts
        else f"- Found by the decision tree (drconsole triage) at {clock(incident.opened_at)}."
    )
    lines += [
        "",
        "### Response",
        f"- Incident {incident.id} opened at {clock(incident.opened_at)} as {incident.severity}: {incident.title}.",
    ]
    if incident.recommended:
        lines.append(f"- The decision tree recommended: {', '.join(incident.recommended)}.")
    lines += [
        f"- Playbook {run.playbook} (run {run.run_id}): {run.status or 'not finished'}"
        + (", partially" if run.partial else "")
        + (", every check passed" if run.checks_passed else "")
        + "."
        for run in incident.runs
    ]
    lines += ["", "## Resolution", "### Immediate Actions"]
    steps = [event for event in events if event.kind == "step"]
    lines += [
        f"{index}. {clock(event.time)} {event.data.get('step', '')}: {event.data.get('status', '')} - "
        f"{event.message.partition(': ')[2] or event.message}"
        for index, event in enumerate(steps, start=1)
    ] or [f"- {TODO}"]
    lines += ["", "### Data"]
    lines += [f"- Lost: {item}" for item in incident.lost()] or [
        "- Nothing lost, by the runs' final accounting." if incident.runs else f"- {TODO}"
    ]
    lines += [
        f"- Re-applied: {item}"
        for run_event in events
        if run_event.kind == "run_finished"
        for item in run_event.data.get("recovered") or []
    ]
    lines += ["", "### Long-term Fixes", f"- {TODO}", "", "## Lessons Learned"]
    went_well, improve, actions = _lessons(incident, now)
    lines += ["### What Went Well"] + ([f"- {item}" for item in went_well] or [f"- {TODO}"])
    lines += ["", "### What Could Be Improved"] + ([f"- {item}" for item in improve] or [f"- {TODO}"])
    lines += ["", "### Action Items"] + [f"- [ ] {item}" for item in actions]
    lines += [
        "",
        "## Prevention",
        "### Monitoring Improvements",
        f"- {TODO}",
        "### Process Changes",
        f"- {TODO}",
        "### Code Changes",
        f"- {TODO}",
        "",
    ]
    return "\n".join(lines)


def _zone_name(zone: tzinfo, moment: float) -> str:
    name = datetime.fromtimestamp(moment, zone).tzname()
    return "UTC" if name in (None, "UTC") else str(name)


def _word(answer: bool | None) -> str:
    return "yes" if answer is True else "no" if answer is False else "unknown"


def _state(incident: Incident) -> str:
    return {"open": "still open", "resolved": "resolved", "closed": "closed"}[incident.status]


def _status_line(incident: Incident, stamp: Clock) -> str:
    if incident.closed_at is not None:
        resolved = f"resolved at {stamp(incident.resolved_at)}, " if incident.resolved_at is not None else ""
        return f"{resolved}closed at {stamp(incident.closed_at)}: {incident.close_reason}"
    if incident.resolved_at is not None:
        return f"resolved at {stamp(incident.resolved_at)}: {incident.resolution}"
    if incident.awaiting_verification:
        return "open: the last run passed its checks; it resolves when the node serves again"
    return "open"


def _root_cause(incident: Incident) -> str:
    yes = [answer for answer in incident.answers() if answer.answer is True]
    if not yes:
        return f"{incident.title} ({TODO})"
    last = yes[-1]
    return f"{incident.title}: {last.question} yes ({last.evidence}) — to be confirmed in the postmortem"


def _data_lost(incident: Incident) -> str:
    lost = incident.lost()
    if lost:
        return "; ".join(lost)
    if any(run.finished_at is not None for run in incident.runs):
        return "none (the runs' final accounting)"
    return "not known yet (no run has finished)"


def _runs_line(incident: Incident) -> str:
    if not incident.runs:
        return "none run"
    return ", ".join(
        f"{run.playbook} ({run.status or 'running'}{', partially' if run.partial else ''})" for run in incident.runs
    )


def _milestones(incident: Incident) -> list[tuple[float, str]]:
    """The template's timeline: detected, response, root cause, fix, restored, closed (those that happened)."""
    events = incident.events

    def first(kind: str, test: Callable[[IncidentEvent], bool] | None = None) -> IncidentEvent | None:
        return next((event for event in events if event.kind == kind and (test is None or test(event))), None)

    found: list[tuple[float, str]] = []
    alert = first("alert")
    found.append(
        (alert.time, f"Issue detected: {alert.message}")
        if alert is not None
        else (incident.opened_at, f"Issue detected: {incident.title}")
    )
    found.append((incident.opened_at, f"Response initiated: {incident.id} opened as {incident.severity}"))
    cause = first("triage", lambda event: bool(event.data.get("recommended")))
    if cause is not None:
        found.append((cause.time, f"Root cause identified: {cause.message.removeprefix('triage: ')}"))
    fixed = first("run_finished", lambda event: event.data.get("status") == "succeeded")
    if fixed is not None:
        found.append((fixed.time, f"Fix applied: {fixed.data.get('playbook')} {fixed.data.get('status')}"))
    if incident.resolved_at is not None:
        restored = incident.resolution.removeprefix("service restored: ")
        found.append((incident.resolved_at, f"Service restored: {restored}"))
    if incident.closed_at is not None:
        found.append((incident.closed_at, f"Incident closed: {incident.close_reason}"))
    return sorted(found, key=lambda row: row[0])


def _event_line(event: IncidentEvent, clock: Clock) -> str:
    node = f" [{event.node}]" if event.node else ""
    who = f" ({event.user})" if event.user and event.user not in event.message else ""
    return f"- {clock(event.time)} {event.kind}: {event.message}{node}{who}"


def _lessons(incident: Incident, now: float) -> tuple[list[str], list[str], list[str]]:
    went_well: list[str] = []
    improve: list[str] = []
    actions: list[str] = []
    if any(event.kind == "alert" for event in incident.events):
        went_well.append("The alert rules detected the problem.")
    for run in incident.runs:
        if run.status == "succeeded" and run.checks_passed:
            went_well.append(f"Playbook {run.playbook} completed and passed its checks.")
        elif run.status is not None:
            improve.append(
                f"Playbook {run.playbook} did not complete cleanly ({run.status}"
                f"{', partially' if run.partial else ''})."
            )
    target = duration_text(incident.target_rto_seconds)
    if incident.status == "resolved" or incident.resolved_at is not None:
        (went_well if incident.within_target(now) else improve).append(
            f"Service restored in {duration_text(incident.clock_seconds(now))}: "
            + (
                f"within the {target} RTO target."
                if incident.within_target(now)
                else f"the {target} RTO target was missed."
            )
        )
    elif not incident.within_target(now):
        improve.append(f"The {target} RTO target was missed.")
    overridden = [answer.question for answer in incident.answers() if answer.overridden]
    if overridden:
        improve.append(f"The responder overrode {len(overridden)} probe answer(s): {'; '.join(overridden)}.")
        actions.append("Review the probes whose answers were overridden.")
    if incident.lost():
        actions.append("Decide what to do with the data kept in quarantine (listed under Data).")
    actions.append("Check that backups and WAL archiving cover the recovery point.")
    actions.append("Schedule the postmortem meeting and complete this report.")
    return went_well, improve, actions
