"""Every console command: its key, its palette entry, and whether it may run in each mode.

The key bindings (``bindings``), the command palette, the help screen and the app's
``check_action`` (``refused``) are all built from this one table, so they cannot disagree.
``writes`` commands are refused in read-only and dashboard modes; only ``dashboard`` commands
exist on the wall screen. This is the read-only rule of the keys and the palette; the actions
themselves check again through ``console.tui.safety.Capabilities`` whatever the route.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

__all__ = ["COMMANDS", "ConsoleCommand", "action_name", "allowed", "bindings", "refused"]


@dataclass(frozen=True)
class ConsoleCommand:
    title: str
    help: str
    action: str  # an app action ("show_screen('triage')") or a screen's ("screen.accept")
    key: str  # as shown in the help screen
    writes: bool = False
    dashboard: bool = False
    screen: str | None = None  # offered only on this screen ("triage"); None: everywhere
    # The key binding: Textual key names ("1", "question_mark"), bound on the app (``bound_on``
    # None) or on one screen ("run"); the footer shows ``label`` (else the title).
    keys: str | None = None
    bound_on: str | None = None
    label: str | None = None
    key_display: str | None = None
    show: bool = True
    priority: bool = False


COMMANDS: tuple[ConsoleCommand, ...] = (
    ConsoleCommand(
        "Overview",
        "Every node at a glance: health, disk, memory, replication, backups, alerts",
        "show_screen('overview')",
        "1",
        keys="1",
    ),
    ConsoleCommand(
        "Triage",
        "Walk the decision tree for the selected node, with the evidence for each answer",
        "show_screen('triage')",
        "2",
        keys="2",
    ),
    ConsoleCommand(
        "Run", "The playbook run: steps, progress with bytes and ETA, live log", "show_screen('run')", "3", keys="3"
    ),
    ConsoleCommand("Timeline", "Every event of the incident, with times", "show_screen('timeline')", "4", keys="4"),
    ConsoleCommand(
        "Accept the probe's answer",
        "Triage: take the probe's answer to the current question",
        "screen.accept",
        "a (Triage)",
        screen="triage",
        keys="a",
        bound_on="triage",
        label="Accept",
    ),
    ConsoleCommand(
        "Answer yes",
        "Triage: answer yes (an override when the probe said no)",
        "screen.answer(True)",
        "y (Triage)",
        screen="triage",
        keys="y",
        bound_on="triage",
        label="Yes",
    ),
    ConsoleCommand(
        "Answer no",
        "Triage: answer no (an override when the probe said yes)",
        "screen.answer(False)",
        "n (Triage)",
        screen="triage",
        keys="n",
        bound_on="triage",
        label="No",
    ),
    ConsoleCommand(
        "Undo the last answer",
        "Triage: take the last answer back",
        "screen.undo",
        "u (Triage)",
        screen="triage",
        keys="u",
        bound_on="triage",
        label="Undo",
    ),
    ConsoleCommand(
        "Alerts",
        "Select an alert in the strip: enter triages from it, m silences it",
        "screen.focus_alerts",
        "! (Overview)",
        screen="overview",
        keys="exclamation_mark",
        bound_on="overview",
        key_display="!",
        show=False,  # "!", not "a": a key means one thing across the screens, and "a" accepts on Triage
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
    ConsoleCommand(
        "Start run",
        "Start the playbook chosen in Triage",
        "start_run",
        "s (Run)",
        writes=True,
        keys="s",
        bound_on="run",
        label="Start",
    ),
    ConsoleCommand(
        "Plan run",
        "The dry-run plan of the chosen playbook: each step and what it would touch",
        "plan_run",
        "p (Run)",
        keys="p",
        bound_on="run",
        label="Plan",
    ),
    ConsoleCommand(
        "Cancel run",
        "Cancel the running playbook after its current step",
        "cancel_run",
        "c (Run)",
        keys="c",
        bound_on="run",
        label="Cancel",
    ),
    ConsoleCommand(
        "Resume run",
        "Resume the node's last interrupted or failed run from its journal",
        "resume_run",
        "r (Run)",
        writes=True,
        keys="r",
        bound_on="run",
        label="Resume",
    ),
    ConsoleCommand(
        "Export incident report",
        "Write the incident report (Markdown) to the report directory",
        "export_report",
        "e (Timeline)",
        writes=True,
        keys="e",
        bound_on="timeline",
        label="Export report",
    ),
    ConsoleCommand("Help", "Keys and commands", "help", "?", dashboard=True, keys="question_mark", key_display="?"),
    ConsoleCommand(
        "Quit",
        "Leave drconsole (a running playbook keeps its journal)",
        "quit",
        "ctrl+q",
        dashboard=True,
        keys="ctrl+q",
        priority=True,
    ),
)


def allowed(command: ConsoleCommand, *, read_only: bool, dashboard: bool, screen: str | None = None) -> bool:
    """Whether ``command`` is offered in this mode (and, for screen commands, on ``screen``)."""
    if dashboard:
        return command.dashboard
    if command.screen is not None and screen is not None and command.screen != screen:
        return False
    return not (read_only and command.writes)


def action_name(action: str) -> str:
    """The action's name as ``check_action`` gets it: "show_screen('run')" -> "show_screen", "screen.undo" -> "undo"."""
    return action.split("(", 1)[0].rsplit(".", 1)[-1]


def bindings(on: str | None = None) -> list[Binding]:
    """The key bindings of the app (``on`` None) or of screen ``on``, in the table's order.

    An app command bound on a screen runs as ``app.ACTION``; a screen command as the screen's own.
    """
    found = []
    for command in COMMANDS:
        if command.keys is None or command.bound_on != on:
            continue
        action = command.action
        if on is not None:
            action = action.removeprefix("screen.") if action.startswith("screen.") else f"app.{action}"
        found.append(
            Binding(
                command.keys,
                action,
                command.label or command.title,
                key_display=command.key_display,
                show=command.show,
                priority=command.priority,
            )
        )
    return found


def refused(action: str, *, read_only: bool, dashboard: bool) -> bool:
    """Whether the app's ``check_action`` refuses ``action`` in this mode: it is a command of the table
    and no entry for it is allowed (an action that is not a command, e.g. the palette's, is not refused)."""
    entries = [command for command in COMMANDS if action_name(command.action) == action]
    return bool(entries) and not any(allowed(command, read_only=read_only, dashboard=dashboard) for command in entries)
