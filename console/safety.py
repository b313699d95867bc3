"""The console's action layer: what a mode may do, checked where the action runs, not only in the keys.

Every action that can change something (start or resume a playbook run, confirm a destructive
step, write a report file) asks ``Capabilities.require_write`` first; every action that leaves
the wall-screen view asks ``require_interactive``. Read-only and dashboard modes refuse them
with ``ReadOnlyRefusal`` whatever the route: key, mouse, palette command or a direct call.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Capabilities", "ReadOnlyRefusal"]


class ReadOnlyRefusal(Exception):
    """An action refused because the console is read-only (exit code 4 in the CLI's terms).

    Not an ``engines.errors.ReadOnlyError``: it never leaves the console (it becomes a notice), and
    importing the engines package would cost the console's first paint a few hundred milliseconds.
    """

    exit_code = 4

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


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
            raise ReadOnlyRefusal(f"{what}: refused, the console is {mode}",
                                  hint="run `drconsole tui` without --read-only to act")

    def require_interactive(self, what: str) -> None:
        if self.dashboard:
            raise ReadOnlyRefusal(f"{what}: refused, the dashboard is a read-only status board",
                                  hint="run `drconsole tui` for the interactive console")
