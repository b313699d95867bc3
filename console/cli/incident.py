"""``drconsole incident``: incident timelines, reports, closing and verifying, from the command line.

drconsole incident list | show ID | report ID --output F.md | close ID [--reason TEXT] | verify ID [--url URL]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from console.cli.common import CommandGroup, absolute_path
from console.cli.targets import config_path, load_node_config
from console.output import EXIT_OK, EXIT_PROBLEM, Output, output_for

__all__ = [
    "register",
    "run_incident_list",
    "run_incident_show",
    "run_incident_report",
    "run_incident_close",
    "run_incident_verify",
]


def register(subparsers: Any, common: argparse.ArgumentParser | None = None) -> None:
    """Add ``incident`` to ``subparsers`` (``common``: the main parser's shared options)."""
    incident = CommandGroup(
        subparsers,
        "incident",
        "incident timelines and reports",
        common,
        description="incident timelines and reports",
        json_on_group=True,
    )
    incident.add("list", "every incident, newest last", run_incident_list)
    shown = incident.add("show", "one incident's timeline", run_incident_show)
    shown.add_argument("id", metavar="ID")
    report = incident.add("report", "write the incident report (Markdown, the guides' template)", run_incident_report)
    report.add_argument("id", metavar="ID")
    report.add_argument("--output", required=True, type=absolute_path, metavar="F.md")
    close = incident.add("close", "close an incident by hand", run_incident_close)
    close.add_argument("id", metavar="ID")
    close.add_argument("--reason", default="closed by the responder")
    verify = incident.add(
        "verify",
        "resolve the incident if its last run passed its checks and the node serves "
        "again (GET /ready 200; a data dir: it opens); exit 1 while it does not",
        run_incident_verify,
    )
    verify.add_argument("id", metavar="ID")
    verify.add_argument("--url", metavar="URL", help="the node's URL (default: the run's, else the config's)")


def _incident_line(incident: Any) -> str:
    from playbooks.incident_model import duration_text

    row = incident.summary_json()
    clock = f"RTO {duration_text(row['rto_seconds'])}/{duration_text(row['target_rto_seconds'])}"
    return (
        f"{row['id']}  {row['status']:<8} {row['severity']}  {row['opened_at']}  {clock:<14} "
        f"{row['target']}: {row['title']}"
    )


def run_incident_list(args: argparse.Namespace, output: Output | None = None) -> int:
    from playbooks.incident_store import IncidentStore

    out = output_for(args, output)
    incidents = IncidentStore().list()
    text = [_incident_line(incident) for incident in incidents] or ["no incidents"]
    out.result({"incidents": [incident.summary_json() for incident in incidents]}, "\n".join(text))
    return EXIT_OK


def run_incident_show(args: argparse.Namespace, output: Output | None = None) -> int:
    from playbooks.incident_store import IncidentStore

    out = output_for(args, output)
    incident = IncidentStore().load(args.id)
    payload = incident.to_json()
    lines = [_incident_line(incident), f"  target RTO: {incident.rto_basis}"]
    if incident.resolution:
        lines.append(f"  {incident.resolution}")
    if incident.close_reason:
        lines.append(f"  closed: {incident.close_reason}")
    lines += [f"  lost: {item}" for item in incident.lost()]
    for event in incident.events:
        where = f" [{event.node}]" if event.node else ""
        lines.append(
            f"  {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(event.time))}  {event.kind:<15} {event.message}{where}"
        )
    out.result(payload, "\n".join(lines))
    return EXIT_OK


def run_incident_report(args: argparse.Namespace, output: Output | None = None) -> int:
    from engines.fsutil import atomic_write_text
    from playbooks.incident_report import report_markdown
    from playbooks.incident_store import IncidentStore

    out = output_for(args, output)
    incident = IncidentStore().load(args.id)
    atomic_write_text(args.output, report_markdown(incident))
    out.result(
        {"incident": incident.id, "output": str(args.output)},
        f"incident report of {incident.id} written to {args.output}",
    )
    return EXIT_OK


def run_incident_close(args: argparse.Namespace, output: Output | None = None) -> int:
    from playbooks.incident_store import IncidentStore

    out = output_for(args, output)
    store = IncidentStore()
    incident = store.load(args.id)
    if incident.status == "closed":
        out.result({"incident": incident.id, "status": "closed"}, f"{incident.id} was already closed")
        return EXIT_OK
    closed = store.close(incident.id, args.reason)
    out.result(
        {"incident": closed.id, "status": closed.status, "rto_seconds": round(closed.clock_seconds(), 1)},
        f"{closed.id} closed: {args.reason}",
    )
    return EXIT_OK


def run_incident_verify(args: argparse.Namespace, output: Output | None = None) -> int:
    from playbooks.incident_store import IncidentStore
    from playbooks.incident_verify import verify_recovery

    out = output_for(args, output)
    store = IncidentStore()
    incident = store.load(args.id)
    if not incident.is_open:
        out.result(
            {
                "incident": incident.id,
                "resolved": incident.resolved_at is not None,
                "status": incident.status,
                "why": incident.resolution or incident.close_reason,
            },
            f"{incident.id} is already {incident.status}",
        )
        return EXIT_OK
    url, data_dir = args.url, None
    if Path(incident.target).is_absolute():
        data_dir = Path(incident.target)
    elif url is None and not incident.ready_url and config_path(args) is not None:
        spec = next((node for node in load_node_config(args).nodes if node.name == incident.target), None)
        if spec is not None:
            url, data_dir = spec.url, spec.data_dir
    outcome = verify_recovery(store, incident.target, url=url, data_dir=data_dir)
    after = outcome.incident or incident
    payload = {
        "incident": after.id,
        "resolved": outcome.resolved,
        "status": after.status,
        "why": outcome.why,
        "rto_seconds": round(after.clock_seconds(), 1),
    }
    text = (
        f"{after.id} resolved: {outcome.why}; RTO {payload['rto_seconds']} s"
        if outcome.resolved
        else f"{after.id} stays open: {outcome.why}"
    )
    out.result(payload, text)
    return EXIT_OK if outcome.resolved else EXIT_PROBLEM
