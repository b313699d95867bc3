"""Incidents: one outage on one target, from the diagnosis that found it to the node verified serving again.

The one incident model of drconsole; the console and the CLI render it, so both show the same id,
severity, RTO clock and events. Its parts, each in its own module:

    incident_model    Incident, IncidentEvent, fold (an incident is the fold of its events), rto_target
    incident_store    IncidentStore: JSONL files in <state-dir>/incidents/, open/join, record, resolve, close
    incident_triage   TriageRecord, record_triage: a diagnosis with a fault opens or joins; a healthy one opens none
    incident_alerts   AlertTracker: fleet snapshots -> alert raised / cleared events
    incident_verify   verify_recovery: resolves when the last run's checks passed and the node serves again
    incident_report   report_markdown: the reference guides' incident report template

Lifecycle: opened by a triage that finds a fault (severity: the diagnosis', raised never lowered),
or by a recovery run when none is open (the playbook's severity); joined by every later triage,
run, step and alert on the target; resolved when the target is verified serving again (the RTO
clock stops then, not when a run's last step ends); or closed by hand with a reason.
"""

from __future__ import annotations

from playbooks.incident_model import Incident, IncidentEvent, fold, rto_target
from playbooks.incident_report import report_markdown
from playbooks.incident_store import IncidentStore
from playbooks.incident_triage import TriageRecord, playbook_targets, record_triage
from playbooks.incident_verify import Verification, verify_recovery

__all__ = [
    "Incident",
    "IncidentEvent",
    "IncidentStore",
    "TriageRecord",
    "Verification",
    "fold",
    "playbook_targets",
    "record_triage",
    "report_markdown",
    "rto_target",
    "verify_recovery",
]
