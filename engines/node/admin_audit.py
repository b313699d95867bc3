"""The hook through which whoever composes a node audits its admin calls (issue 18, item 5).

Every ``POST /admin/<action>`` that passed the token and its body's checks is reported twice:
``started`` before it runs and its outcome after (``succeeded``, ``failed``, ``refused``), with
who asked (the ``x-drconsole-actor`` header the client sent, unverified, and the address it came
from). The audit log itself lives in ``playbooks`` (engines never import it): ``drconsole node
serve`` passes ``playbooks.node_audit.admin_audit(...)`` here. When the hook cannot write, the
call is refused before it runs: nothing changes unaudited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["AdminCall", "AdminAudit", "ACTOR_HEADER"]

ACTOR_HEADER = "x-drconsole-actor"  # the same header the playbook agent reads (playbooks.agent.protocol)


@dataclass(frozen=True)
class AdminCall:
    node: str
    action: str
    args: dict[str, Any] = field(default_factory=dict)
    client: str = "?"
    actor: str | None = None  # the header as sent: a claim, recorded as such


class AdminAudit(Protocol):
    def __call__(self, call: AdminCall, outcome: str, detail: str = "") -> None: ...
