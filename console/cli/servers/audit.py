"""Session start and end in the audit log (playbooks.audit): who, which role, from where, how long.

The log is the state directory's ``audit.jsonl`` (playbooks.state.StateDir: ``$DRCONSOLE_STATE_DIR``
first), the same chain the console's own actions go to, so that ``drconsole audit verify`` covers
sessions too. A session's ``client`` is ``SSH_CLIENT``-shaped ("address port local-port").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from playbooks.audit import AuditLog
from playbooks.state import Actor, StateDir, new_run_id

__all__ = ["SessionAudit"]


@dataclass
class SessionAudit:
    """One session's two audit lines; ``end`` is written once, whatever ends the session."""

    user: str
    role: str
    client: str
    via: str  # "ssh" or "web"
    log: AuditLog = field(default_factory=lambda: AuditLog(StateDir().audit_log))
    session: str = field(default_factory=new_run_id)
    started: float = 0.0
    ended: bool = False

    @property
    def address(self) -> str:
        return self.client.split()[0] if self.client else ""

    def _append(self, action: str, outcome: str, detail: str, **extra: object) -> None:
        self.log.append(
            actor=Actor(user=self.user, ssh_client=self.client or None),
            action=action,
            target=f"{self.via}-session",
            outcome=outcome,
            detail=detail,
            session=self.session,
            role=self.role,
            client_address=self.address,
            **extra,
        )

    def start(self, detail: str = "") -> None:
        self.started = time.monotonic()
        self._append("session_start", "ok", detail or f"{self.role} session from {self.address or 'unknown'}")

    def end(self, outcome: str = "ok", detail: str = "", **extra: object) -> None:
        if self.ended or not self.started:
            return
        self.ended = True
        duration = round(time.monotonic() - self.started, 3)
        self._append("session_end", outcome, detail or f"after {duration:.1f} s", duration_seconds=duration, **extra)

    def refused(self, reason: str) -> None:
        self._append("session_refused", "refused", reason)
