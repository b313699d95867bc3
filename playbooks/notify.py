"""Telling people: a Slack-compatible webhook at the end of a run and at an incident's milestones, and the
escalation path on failure.

The webhook gets ``{"text": ...}`` (success, partial success, failure, as the Orbit guide's
``notify_*`` functions send; an incident opened, its severity raised, resolved, closed), plus the
incident's id and severity as fields when there is one: the severity is the incident's, the same
the console and the CLI show. It is best effort: a webhook that fails or times out is logged and
never fails the run. The escalation path (DevOps on-call -> SRE lead -> Engineering manager by
default, as in the guides) is shown when a run fails; contacts come from the config's
``[escalation] path`` or a contacts file (``DRCONSOLE_ESCALATION_FILE``: TOML with
``[[contact]] name, phone, email, slack``).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playbooks.incident_model import duration_text

if TYPE_CHECKING:
    from playbooks.incident_model import Incident

__all__ = ["NotifyResult", "send_webhook", "run_message", "incident_message", "escalation_path", "DEFAULT_ESCALATION"]

DEFAULT_ESCALATION = ["DevOps on-call", "SRE lead", "Engineering manager"]


@dataclass
class NotifyResult:
    sent: bool
    detail: str


def run_message(
    playbook: str, run_id: str, status: str, partial: bool, target: str, incident: tuple[str, str] | None = None
) -> str:
    """The end of a run; ``incident``: (id, severity) of the incident it belongs to."""
    tag = f" [{incident[0]} {incident[1]}]" if incident else ""
    if status == "succeeded" and not partial:
        return f"✅ drconsole{tag}: {playbook} succeeded on {target} (run {run_id})"
    if status == "succeeded":
        return (
            f"⚠️ drconsole{tag}: {playbook} partially succeeded on {target} - manual verification needed (run {run_id})"
        )
    if status == "refused":
        return f"⛔ drconsole{tag}: {playbook} was refused on {target} (run {run_id})"
    return f"🚨 drconsole{tag}: {playbook} FAILED on {target} - immediate attention required (run {run_id})"


def incident_message(incident: Incident, what: str, *, now: float | None = None) -> str:
    """An incident milestone: ``what`` is "opened", "severity" (raised), "resolved" or "closed"."""
    head = f"drconsole {incident.id} {incident.severity} on {incident.target}"
    clock = f"RTO {duration_text(incident.clock_seconds(now))} (target {duration_text(incident.target_rto_seconds)})"
    if what == "opened":
        return f"🚨 {head}: opened - {incident.title}; RTO target {duration_text(incident.target_rto_seconds)}"
    if what == "severity":
        return f"🚨 {head}: severity raised to {incident.severity} - {incident.meaning}"
    if what == "resolved":
        return f"✅ {head}: resolved - {incident.resolution}; {clock}"
    return f"☑️ {head}: closed - {incident.close_reason}; {clock}"


def send_webhook(
    url: str | None, text: str, *, timeout: float = 5.0, extra: dict[str, Any] | None = None
) -> NotifyResult:
    """POST ``{"text": text}`` to ``url``; never raises."""
    if not url:
        return NotifyResult(False, "no webhook configured")
    try:
        import httpx

        response = httpx.post(url, json={"text": text, **(extra or {})}, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - a notification must never fail a recovery
        return NotifyResult(False, f"webhook failed: {type(exc).__name__}: {exc}")
    if response.status_code >= 400:
        return NotifyResult(False, f"webhook answered HTTP {response.status_code}")
    return NotifyResult(True, f"webhook answered HTTP {response.status_code}")


def escalation_path(configured: list[str] | None = None) -> list[str]:
    """Who to call, in order: contacts file, else the configured path, else the guides' default."""
    file = os.environ.get("DRCONSOLE_ESCALATION_FILE")
    if file and Path(file).is_file():
        try:
            data = tomllib.loads(Path(file).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            data = {}
        contacts = data.get("contact") if isinstance(data, dict) else None
        if isinstance(contacts, list) and contacts:
            rows = []
            for contact in contacts:
                if isinstance(contact, dict) and contact.get("name"):
                    ways = ", ".join(str(contact[key]) for key in ("phone", "email", "slack") if contact.get(key))
                    rows.append(f"{contact['name']}" + (f" ({ways})" if ways else ""))
            if rows:
                return rows
    return list(configured) if configured else list(DEFAULT_ESCALATION)
