"""The incident report, in the template of the reference guides (Orbit's "Incident Report Template").

Sections: Incident Summary, Timeline, Root Cause Analysis, Resolution, Lessons Learned (with
Action Items) and Prevention. Every fact the console has is filled in; what only people know is
left as a marked blank for the postmortem.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from console.format import duration_text
from console.incident import SEVERITY_MEANING, Incident, TimelineEvent
from playbooks.fleet import FleetSnapshot

__all__ = ["incident_report_markdown", "TODO"]

TODO = "_(to be completed in the postmortem)_"

# The template's timeline milestones, and the first event kind that marks each.
_MILESTONES = (("alert", "Issue detected"), ("incident", "Response initiated"),
               ("root-cause", "Root cause identified"), ("run-succeeded", "Fix applied"),
               ("alert-cleared", "Service restored"), ("closed", "Incident closed"))


def _milestone_kind(event: TimelineEvent) -> str:
    if event.kind == "run" and "succeeded" in event.text:
        return "run-succeeded"
    if event.kind == "triage" and event.text.startswith("recommended"):
        return "root-cause"
    if event.kind == "incident" and event.text.startswith("closed"):
        return "closed"
    return event.kind


def incident_report_markdown(incident: Incident, snapshot: FleetSnapshot | None, *, now: datetime,
                             tz: tzinfo | None = None) -> str:
    """The Markdown report of ``incident`` as of ``now``."""
    def hms(moment: datetime) -> str:
        return moment.astimezone(tz).strftime("%H:%M:%S")

    events = sorted(incident.events, key=lambda event: event.at)
    alerts = [event for event in events if event.kind == "alert"]
    affected = sorted({event.node for event in events if event.node} | ({incident.node} if incident.node else set()))
    elapsed = incident.elapsed_seconds(now)
    state = "resolved" if incident.resolved_at else "still open"
    root_cause = _root_cause(incident)
    lines = [
        f"# Incident Report: {incident.id}",
        "",
        "## Incident Summary",
        f"- **Date**: {incident.opened_at.astimezone(tz):%Y-%m-%d}",
        f"- **Duration**: {duration_text(elapsed)} ({state})",
        f"- **Severity**: {incident.severity} ({SEVERITY_MEANING.get(incident.severity, '')})",
        f"- **Affected Nodes**: {', '.join(affected) if affected else 'none recorded'}",
        f"- **Affected Users**: {TODO}",
        f"- **Root Cause**: {root_cause}",
        f"- **RTO**: {duration_text(elapsed)} against a target of {duration_text(incident.target_rto_seconds)}"
        f" ({'within target' if incident.within_target(now) else 'target missed'})",
        f"- **Playbook**: {incident.playbook or 'none run'}"
        + (f" ({incident.outcome})" if incident.outcome else ""),
    ]
    if incident.responder:
        lines.append(f"- **Responder**: {incident.responder}")
    if incident.recorded_as:
        lines.append(f"- **Recorded as**: {incident.recorded_as} (answers, overrides, who and when: "
                     f"`drconsole incident show {incident.recorded_as}`)")
    lines += ["", "## Timeline"]
    seen: set[str] = set()
    for event in events:
        kind = _milestone_kind(event)
        label = next((name for key, name in _MILESTONES if key == kind and key not in seen), None)
        if label is not None:
            seen.add(kind)
        node = f" [{event.node}]" if event.node else ""
        lines.append(f"- {hms(event.at)} - {label + ': ' if label else ''}{event.text}{node}")
    if not events:
        lines.append("- (no events recorded)")
    lines += ["", "## Root Cause Analysis", "### What Happened"]
    lines += [f"- {hms(event.at)} {event.text}" + (f" [{event.node}]" if event.node else "") for event in alerts] or \
        ["- No alert fired; the incident was opened by the responder."]
    lines += ["", "### Why It Happened"]
    if incident.triage_path:
        answered_at = _answer_times(events)
        by = f", by {incident.responder}" if incident.responder else ""
        for question, answer, evidence, overridden in incident.triage_path:
            verdict = "yes" if answer else "no"
            when = answered_at.get(question)
            lines.append(f"- {question} **{verdict}**" + (f" — {evidence}" if evidence else "")
                         + (" (answer overridden by the responder)" if overridden else "")
                         + (f" [{hms(when)}{by}]" if when is not None else ""))
    else:
        lines.append(f"- {TODO}")
    lines += ["", "### Detection"]
    if alerts:
        first = alerts[0]
        lines.append(f"- First detected at {hms(first.at)} by drconsole's alert rules: {first.text}.")
    else:
        lines.append(f"- {TODO}")
    lines += ["", "### Response",
              f"- Incident {incident.id} opened at {hms(incident.opened_at)} as {incident.severity}."]
    if incident.recommended:
        lines.append(f"- Decision tree recommended: {', '.join(incident.recommended)}.")
    if incident.playbook:
        lines.append(f"- Playbook run: {incident.playbook}" + (f", {incident.outcome}." if incident.outcome else "."))
    lines += ["", "## Resolution", "### Immediate Actions"]
    steps = [event for event in events if event.kind in ("step", "run")]
    lines += [f"{index}. {hms(event.at)} {event.text}" for index, event in enumerate(steps, start=1)] or [f"- {TODO}"]
    lines += ["", "### Long-term Fixes", f"- {TODO}", "", "## Lessons Learned", "### What Went Well"]
    went_well, improve, actions = _lessons(incident, snapshot, now)
    lines += [f"- {item}" for item in went_well] or [f"- {TODO}"]
    lines += ["", "### What Could Be Improved"]
    lines += [f"- {item}" for item in improve] or [f"- {TODO}"]
    lines += ["", "### Action Items"]
    lines += [f"- [ ] {item}" for item in actions]
    lines += ["", "## Prevention", "### Monitoring Improvements", f"- {TODO}", "### Process Changes", f"- {TODO}",
              "### Code Changes", f"- {TODO}", ""]
    return "\n".join(lines)


def _answer_times(events: list[TimelineEvent]) -> dict[str, datetime]:
    """When each question was last answered (the triage screen records "<question> yes|no (...)")."""
    found: dict[str, datetime] = {}
    for event in events:
        if event.kind in ("triage", "override"):
            for verdict in (" yes (", " no ("):
                question, sep, _rest = event.text.partition(verdict)
                if sep:
                    found[question] = event.at
                    break
    return found


def _root_cause(incident: Incident) -> str:
    if not incident.triage_path:
        return TODO
    question, answer, evidence, _overridden = incident.triage_path[-1]
    found = f"{question} {'yes' if answer else 'no'}"
    return f"{found}" + (f" ({evidence})" if evidence else "") + " — to be confirmed in the postmortem"


def _lessons(incident: Incident, snapshot: FleetSnapshot | None, now: datetime) -> tuple[list[str], list[str], list[str]]:
    went_well: list[str] = []
    improve: list[str] = []
    actions: list[str] = []
    if any(event.kind == "alert" for event in incident.events):
        went_well.append("The alert rules detected the problem.")
    if incident.outcome == "succeeded":
        went_well.append(f"Playbook {incident.playbook} completed.")
    elif incident.playbook:
        improve.append(f"Playbook {incident.playbook} did not complete ({incident.outcome or 'not finished'}).")
    if incident.within_target(now):
        went_well.append(f"Recovery within the {duration_text(incident.target_rto_seconds)} RTO target.")
    else:
        improve.append(f"The {duration_text(incident.target_rto_seconds)} RTO target was missed.")
    overridden = [question for question, _answer, _evidence, was_overridden in incident.triage_path if was_overridden]
    if overridden:
        improve.append(f"The responder overrode {len(overridden)} probe answer(s): {'; '.join(overridden)}.")
        actions.append("Review the probes whose answers were overridden.")
    if snapshot is not None:
        for node in snapshot.nodes:
            if node.backup.last_backup_at is not None and node.backup.verified is False:
                actions.append(f"Verify the latest backup of {node.name} (`drconsole backup verify`).")
            elif node.backup.last_backup_at is None and node.reachable:
                actions.append(f"Set up backups for {node.name}.")
    actions.append("Schedule the postmortem meeting and complete this report.")
    return went_well, improve, actions
