"""Every console command: its key, its palette entry, and whether it may run in each mode.

The key bindings, the command palette and the help screen are all built from this one table, so
they cannot disagree. ``writes`` commands are refused in read-only and dashboard modes;
only ``dashboard`` commands exist on the wall screen.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["COMMANDS", "ConsoleCommand", "allowed"]


@dataclass(frozen=True)
class ConsoleCommand:
    title: str
    help: str
    action: str  # an app action, e.g. "show_screen('triage')"
    key: str  # as shown in the help screen
    writes: bool = False
    dashboard: bool = False
    screen: str | None = None  # offered only on this screen ("triage"); None: everywhere


COMMANDS: tuple[ConsoleCommand, ...] = (
    ConsoleCommand(
        "Overview",
        "Every node at a glance: health, disk, memory, replication, backups, alerts",
        "show_screen('overview')",
        "1",
    ),
    ConsoleCommand(
        "Triage",
        "Walk the decision tree for the selected node, with the evidence for each answer",
        "show_screen('triage')",
        "2",
    ),
    ConsoleCommand("Run", "The playbook run: steps, progress with bytes and ETA, live log", "show_screen('run')", "3"),
    ConsoleCommand("Timeline", "Every event of the incident, with times", "show_screen('timeline')", "4"),
    ConsoleCommand(
        "Accept the probe's answer",
        "Triage: take the probe's answer to the current question",
        "screen.accept",
        "a (Triage)",
        screen="triage",
    ),
    ConsoleCommand(
        "Answer yes",
        "Triage: answer yes (an override when the probe said no)",
        "screen.answer(True)",
        "y (Triage)",
        screen="triage",
    ),
    ConsoleCommand(
        "Answer no",
        "Triage: answer no (an override when the probe said yes)",
        "screen.answer(False)",
        "n (Triage)",
        screen="triage",
    ),
    ConsoleCommand(
        "Undo the last answer", "Triage: take the last answer back", "screen.undo", "u (Triage)", screen="triage"
    ),
    ConsoleCommand(
        "Alerts",
        "Select an alert in the strip: enter triages from it, m silences it",
        "screen.focus_alerts",
        "! (Overview)",
        screen="overview",
    ),
    ConsoleCommand(
        "Silence alert",
        "Silence the selected alert in Alertmanager (duration, comment; audited)",
        "silence_alert",
        "m (alert strip)",
        writes=True,
        screen="overview",
    ),
    ConsoleCommand(
        "Node trends",
        "The selected node's disk, request rates, latency, errors, lag and memory, plotted",
        "show_node",
        "t (node card)",
    ),
    ConsoleCommand(
        "Run playbook…",
        "Any playbook of the library on a node: filter, pick, see its dry-run plan, start",
        "pick_playbook",
        "ctrl+p (palette)",
        writes=True,
    ),
    ConsoleCommand("Start run", "Start the playbook chosen in Triage", "start_run", "s (Run)", writes=True),
    ConsoleCommand(
        "Plan run", "The dry-run plan of the chosen playbook: each step and what it would touch", "plan_run", "p (Run)"
    ),
    ConsoleCommand("Cancel run", "Cancel the running playbook after its current step", "cancel_run", "c (Run)"),
    ConsoleCommand(
        "Resume run",
        "Resume the node's last interrupted or failed run from its journal",
        "resume_run",
        "r (Run)",
        writes=True,
    ),
    ConsoleCommand(
        "Export incident report",
        "Write the incident report (Markdown) to the report directory",
        "export_report",
        "e (Timeline)",
        writes=True,
    ),
    ConsoleCommand("Help", "Keys and commands", "help", "?", dashboard=True),
    ConsoleCommand("Quit", "Leave drconsole (a running playbook keeps its journal)", "quit", "ctrl+q", dashboard=True),
)


def allowed(command: ConsoleCommand, *, read_only: bool, dashboard: bool, screen: str | None = None) -> bool:
    """Whether ``command`` is offered in this mode (and, for screen commands, on ``screen``)."""
    if dashboard:
        return command.dashboard
    if command.screen is not None and screen is not None and command.screen != screen:
        return False
    return not (read_only and command.writes)
