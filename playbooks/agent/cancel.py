"""Cancelling a run: once set, every action the runner invokes is refused, so it stops at the next step.

The runner's own refusal path then ends the run (``refused``, journaled, resumable); a step that
is already running finishes first, since cutting an action off mid-way is what the journal and
the safety copy exist to survive, not something to do on purpose.
"""

from __future__ import annotations

import threading
from typing import Any

from engines.errors import SafetyRefusal
from playbooks.actions import REGISTRY, ActionContext, ActionResult, Registry

__all__ = ["CancellableRegistry", "CANCELLED"]

CANCELLED = "the run was cancelled by the responder"


class CancellableRegistry(Registry):
    """A copy of ``base``'s actions whose ``invoke`` refuses once ``cancelled`` is set."""

    def __init__(self, cancelled: threading.Event, base: Registry = REGISTRY) -> None:
        super().__init__()
        self.cancelled = cancelled
        for entry in base:
            self.register(entry)

    def invoke(self, name: str, context: ActionContext, args: dict[str, Any]) -> ActionResult:
        if self.cancelled.is_set():
            raise SafetyRefusal(CANCELLED, hint="start it again, or resume it")
        return super().invoke(name, context, args)
