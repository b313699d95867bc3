"""The console's action layer: what a mode may do, checked where the action runs, not only in the keys.

Every action that can change something (start or resume a playbook run, confirm a destructive
step, write a report file) asks ``Capabilities.require_write`` first; every action that leaves
the wall-screen view asks ``require_interactive``. Read-only and dashboard modes refuse them
with ``ReadOnlyRefusal`` whatever the route: key, mouse, palette command or a direct call.
"""

from __future__ import annotations

from dataclasses import dataclass

# The one refusal of a writing action in read-only mode, whoever refuses it (the console's keys or
# the playbook registry's gate): a SafetyRefusal, exit code 4 in the CLI's terms.
from playbooks.errors import ReadOnlyRefusal

__all__ = ["Capabilities", "ReadOnlyRefusal"]


@dataclass(frozen=True)
class Capabilities:
    read_only: bool = False
    dashboard: bool = False

    @property
    def can_write(self) -> bool:
        return not (self.read_only or self.dashboard)

    def require_write(self, what: str) -> None:
        if not self.can_write:
            mode = "dashboard" if self.dashboard else "read-only"
            raise ReadOnlyRefusal(
                f"{what}: refused, the console is {mode}", hint="run `drconsole tui` without --read-only to act"
            )

    def require_interactive(self, what: str) -> None:
        if self.dashboard:
            raise ReadOnlyRefusal(
                f"{what}: refused, the dashboard is a read-only status board",
                hint="run `drconsole tui` for the interactive console",
            )
