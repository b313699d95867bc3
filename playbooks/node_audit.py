"""What ``drconsole node serve`` composes into the node to audit it (engines never import playbooks).

- ``admin_audit(state)``: the node's admin calls (``engines.node.admin_audit``) in the state dir's
  audit log, as ``admin.<action>`` on ``node <name>``: who (the actor the client named, a claim)
  and from which address, the validated arguments, the outcome;
- ``anchor_to_peers(...)``: each new head of that log also goes to the node's peers
  (``audit_peers.py``), where a root on this host cannot rewrite it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from engines.node.admin_audit import AdminAudit, AdminCall
from playbooks.agent.protocol import actor_from_header
from playbooks.audit import AuditLog, anchor_elsewhere
from playbooks.audit_peers import PeerAnchorSender
from playbooks.state import StateDir

__all__ = ["admin_audit", "anchor_to_peers"]


def admin_audit(state: StateDir) -> AdminAudit:
    log = AuditLog(state.audit_log)

    def record(call: AdminCall, outcome: str, detail: str = "") -> None:
        actor = dataclasses.replace(actor_from_header(call.actor, call.client), via=f"admin API from {call.client}")
        log.append(
            actor=actor,
            action=f"admin.{call.action}",
            target=f"node {call.node}",
            outcome=outcome,
            detail=detail,
            args={name: str(value) for name, value in call.args.items()},
            client_address=call.client,
        )

    return record


def anchor_to_peers(state: StateDir, peers: list[str], *, token: str | None, node: str) -> Callable[[], None]:
    """Send every new head of ``state``'s audit log to ``peers``; returns what stops it."""
    if not peers:
        return lambda: None
    sender = PeerAnchorSender(peers, token=token, node=node)
    undo = anchor_elsewhere(state.audit_log, sender)

    def stop() -> None:
        undo()
        sender.close()

    return stop
