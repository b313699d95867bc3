"""Where the playbook layer keeps its own files, and who is acting.

The state directory is ``$DRCONSOLE_STATE_DIR``, else ``$XDG_STATE_HOME/drconsole``, else
``~/.local/state/drconsole``::

    runs/<run_id>.jsonl       the journal of one run (resumable)
    runs/<run_id>/            scratch space of that run (restores for drills, exports)
    audit.jsonl, audit.head   the hash-chained audit log and its newest hash
    incidents/<id>.jsonl      one incident's timeline
"""

from __future__ import annotations

import getpass
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["StateDir", "Actor", "current_actor", "new_run_id"]


@dataclass(frozen=True)
class Actor:
    """Who did something: the login name and, over SSH, where from (``SSH_CLIENT``).

    ``via``: how the action reached this host when the responder is elsewhere (a node's agent
    writes "agent request from <address>"); None for someone acting on this host.
    """

    user: str
    ssh_client: str | None
    via: str | None = None

    def describe(self) -> str:
        who = self.user if not self.ssh_client else f"{self.user} from {self.ssh_client.split()[0]}"
        return who if not self.via else f"{who} ({self.via})"

    def to_json(self) -> dict[str, str | None]:
        row = {"user": self.user, "ssh_client": self.ssh_client}
        if self.via:
            row["via"] = self.via
        return row


def current_actor() -> Actor:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): the uid still says who
        user = f"uid:{os.getuid()}"
    return Actor(user=user, ssh_client=os.environ.get("SSH_CLIENT") or None)


def new_run_id() -> str:
    """A sortable, unique run id: ``20261123-140501-042-3fa9`` (UTC, milliseconds, random)."""
    now = time.time()
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + f"-{int(now * 1000) % 1000:03d}-" + secrets.token_hex(2)


class StateDir:
    """The state directory; nothing is created until something is written."""

    def __init__(self, root: Path | None = None) -> None:
        if root is None:
            configured = os.environ.get("DRCONSOLE_STATE_DIR")
            if configured:
                root = Path(configured)
            else:
                base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
                root = Path(base) / "drconsole"
        self.root = Path(root).absolute()

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def incidents(self) -> Path:
        return self.root / "incidents"

    @property
    def audit_log(self) -> Path:
        return self.root / "audit.jsonl"

    def journal(self, run_id: str) -> Path:
        return self.runs / f"{run_id}.jsonl"

    def run_dir(self, run_id: str) -> Path:
        return self.runs / run_id

    def ensure(self, path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        return path
