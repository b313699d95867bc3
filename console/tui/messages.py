"""Every message the console's workers and widgets send up. Attributes go down; messages come up.

Workers never touch widgets: they post one of these, and a handler on the app or screen (on the
UI's side) applies it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

from fleet import FleetSnapshot
from playbooks.events import RunEvent
from playbooks.incident_model import Incident

if TYPE_CHECKING:
    from console.adapters.run_adapter import RunEnded
    from playbooks.runner import RunResult

__all__ = [
    "IncidentsChanged",
    "IncidentTrouble",
    "NodeSelected",
    "RunEndedReceived",
    "RunEventReceived",
    "RunPlanned",
    "SnapshotReady",
    "SourceFailed",
    "TrendRangesReady",
    "TriageAnswered",
    "RefusedAction",
]


class TrendRangesReady(Message):
    """The refresh worker read the trends as ranges from a source that keeps them (Prometheus):
    {node: {metric: [(epoch s, value)]}}, for ``FleetHistory.load``."""

    def __init__(self, ranges: dict[str, dict[str, list[tuple[float, float]]]]) -> None:
        super().__init__()
        self.ranges = ranges


class SnapshotReady(Message):
    """The refresh worker built a new snapshot."""

    def __init__(self, snapshot: FleetSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class SourceFailed(Message):
    """A refresh tick failed as a whole (one node's failure is part of the snapshot instead)."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class NodeSelected(Message):
    """The responder picked a node (a card was focused or activated: ``activate`` opens Triage,
    ``screen`` another screen about the node, such as "node" for its trends)."""

    def __init__(self, name: str, activate: bool = False, screen: str | None = None) -> None:
        super().__init__()
        self.name = name
        self.activate = activate
        self.screen = screen


class TriageAnswered(Message):
    """A triage question was answered (accepted or overridden) or an answer was undone."""

    def __init__(self, text: str, node: str, overridden: bool = False) -> None:
        super().__init__()
        self.text = text
        self.node = node
        self.overridden = overridden


class RunEventReceived(Message):
    """The run worker received an event from the playbook run (the runner's own ``RunEvent``)."""

    def __init__(self, event: RunEvent) -> None:
        super().__init__()
        self.event = event


class RunEndedReceived(Message):
    """The runner returned or raised: its result, and whether the node was verified ready."""

    def __init__(self, ended: RunEnded) -> None:
        super().__init__()
        self.ended = ended


class RunPlanned(Message):
    """The dry run of ``playbook`` on ``node`` finished: its plan, or why there is none."""

    def __init__(self, node: str, playbook: str, plan: RunResult | None, error: str = "") -> None:
        super().__init__()
        self.node = node
        self.playbook = playbook
        self.plan = plan
        self.error = error


class RefusedAction(Message):
    """An action was refused (read-only, dashboard); the app tells the responder why."""

    def __init__(self, action: str, reason: str) -> None:
        super().__init__()
        self.action = action
        self.reason = reason


class IncidentsChanged(Message):
    """The incident desk read the incidents back from the store (id -> incident): what the screens show."""

    def __init__(self, incidents: dict[str, Incident]) -> None:
        super().__init__()
        self.incidents = incidents


class IncidentTrouble(Message):
    """Writing or reading an incident failed; the responder is told, the console goes on."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error
