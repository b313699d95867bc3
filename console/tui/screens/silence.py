"""Acting on an alert: triage from the question it starts, or silence it in Alertmanager.

``triage_alert`` opens Triage for the alert's node at the tree question the alert links to
(its ``triage`` annotation). ``request_silence`` is a responder action: refused in read-only and
dashboard modes here, in the action itself (not only by the key map), then confirmed in
``SilenceScreen`` (duration, comment), then posted to Alertmanager (``POST /api/v2/silences``)
and written to the audit log with its outcome, whether Alertmanager accepted it or not. An API
error is a notice on screen, never a crash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from console.tui.safety import ReadOnlyRefusal
from console.tui.widgets.text import line
from engines.errors import EngineError
from fleet import Alert
from fleet.alertmanager import AlertmanagerClient, SilenceRequest
from fleet.prometheus import ApiError
from playbooks.audit import AuditLog
from playbooks.state import StateDir, current_actor

if TYPE_CHECKING:
    from console.adapters.triage_view import TriageView
    from console.tui.app import DrConsoleApp

__all__ = [
    "SilenceForm",
    "SilenceScreen",
    "parse_duration",
    "request_silence",
    "silence_alert",
    "start_at",
    "triage_alert",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d)\s*$")
_UNIT_SECONDS = {"m": 60, "min": 60, "h": 3600, "d": 86400}
MAX_SILENCE_SECONDS = 7 * 86400  # longer than a week is no longer "while we work on it"


def parse_duration(text: str) -> float:
    """ "30m", "2h", "1d" -> seconds; ``ValueError`` saying what is accepted."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"duration {text!r}: write it as 30m, 2h or 1d")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not 0 < seconds <= MAX_SILENCE_SECONDS:
        raise ValueError(f"duration {text!r}: between 1 minute and 7 days")
    return seconds


def alert_name(alert: Alert) -> str:
    return dict(alert.labels).get("alertname", alert.rule)


# -------------------------------------------------------------------- triage from an alert
def start_at(view: TriageView, question: str) -> bool:
    """Make ``view`` walk from ``question`` when its tree has that question; whether it does."""
    node = view.nodes().get(question)
    if node is None or node.is_leaf:
        return False
    view.root = question
    return True


def triage_alert(app: DrConsoleApp, alert: Alert) -> None:
    """Triage ``alert.node`` from the question the alert starts (the tree's root when it names none).

    Building the walk loads the playbook library, so it happens in a thread worker (as the Triage
    screen's own preparation does); the screen opens when the walk is ready.
    """
    try:
        app.capabilities.require_interactive("triage from an alert")
    except ReadOnlyRefusal as exc:
        app.refuse(exc)
        return
    app.selected_node = alert.node
    question = alert.triage
    existing = app.triage_sessions.get(alert.node)
    if not question or (existing is not None and existing.root == question):
        app.action_show_screen("triage")  # already walking from there: keep the answers given
        return
    app.run_worker(
        partial(_prepare_walk, app, alert, question),
        thread=True,
        group="alert-triage",
        exclusive=True,
        exit_on_error=False,
    )


def _prepare_walk(app: DrConsoleApp, alert: Alert, question: str) -> None:
    view = app.triage_factory(app.snapshot, alert.node)
    started = start_at(view, question)
    app.call_from_thread(_open_walk, app, alert, question, view, started)


def _open_walk(app: DrConsoleApp, alert: Alert, question: str, view: TriageView, started: bool) -> None:
    if started:
        app.record("triage", f"from alert {alert_name(alert)}: triage starts at {question!r}", alert.node)
    else:
        app.notify(
            f"this decision tree has no question {question!r}: triage starts at its root",
            title="triage",
            severity="warning",
        )
    app.triage_sessions[alert.node] = view
    app.selected_node = alert.node
    app.action_show_screen("triage")


# -------------------------------------------------------------------- silencing
@dataclass(frozen=True)
class SilenceForm:
    duration_seconds: float
    comment: str


class SilenceScreen(ModalScreen[SilenceForm | None]):
    """The confirmation of a silence: how long and why; the alert's labels are the matchers."""

    DEFAULT_CSS = """
    SilenceScreen { align: center middle; }
    #silence-dialog { width: 76; max-width: 95%; height: auto; border: thick $status-warn;
                      background: $surface; padding: 1 2; }
    #silence-error { color: $status-crit; height: auto; }
    #silence-buttons { height: auto; margin-top: 1; }
    #silence-buttons Button { margin-right: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    """
    | Key(s) | Description |
    | :- | :- |
    | enter | Silence for the duration typed, with the comment typed. |
    | escape | Cancel: nothing is sent to Alertmanager. |
    """

    def __init__(self, alert: Alert, author: str) -> None:
        super().__init__()
        self.alert = alert
        self.author = author

    def compose(self) -> ComposeResult:
        matchers = ", ".join(f"{name}={value}" for name, value in self.alert.labels)
        with Vertical(id="silence-dialog"):
            yield Static(
                line(
                    "[b $status-warn]Silence[/] $name on [b]$node[/b] in Alertmanager\n"
                    "[dim]matchers: $matchers[/dim]\nauthor: $author",
                    name=alert_name(self.alert),
                    node=self.alert.node,
                    matchers=matchers,
                    author=self.author,
                ),
                id="silence-text",
            )
            yield Input(value="1h", placeholder="duration: 30m, 2h, 1d", id="silence-duration")
            yield Input(placeholder="comment (why, and who is on it)", id="silence-comment")
            yield Static(id="silence-error")
            with Horizontal(id="silence-buttons"):
                yield Button("Silence", id="silence-confirm", variant="warning")
                yield Button("Cancel", id="silence-cancel")

    def on_mount(self) -> None:
        self.query_one("#silence-comment", Input).focus()

    def _form(self) -> SilenceForm | None:
        error = self.query_one("#silence-error", Static)
        try:
            seconds = parse_duration(self.query_one("#silence-duration", Input).value)
        except ValueError as exc:
            error.update(str(exc))
            return None
        comment = self.query_one("#silence-comment", Input).value.strip()
        if not comment:
            error.update("a comment is required: say why, and who is on it")
            return None
        return SilenceForm(seconds, comment)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        form = self._form()
        if form is not None:
            self.dismiss(form)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "silence-confirm":
            form = self._form()
            if form is not None:
                self.dismiss(form)
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


def _client(app: DrConsoleApp) -> AlertmanagerClient | None:
    client = getattr(app.source, "alertmanager", None)
    return client if isinstance(client, AlertmanagerClient) else None


def request_silence(app: DrConsoleApp, alert: Alert | None) -> None:
    """The responder action: check the mode, then confirm (``SilenceScreen``), then ``silence_alert``."""
    try:
        app.capabilities.require_write("silence an alert")
    except ReadOnlyRefusal as exc:
        app.refuse(exc)
        return
    if alert is None:
        app.notify("pick an alert first: a on the Overview, then up/down", title="silence", severity="warning")
        return
    if alert.source != "alertmanager" or not alert.labels:
        app.notify(
            "this alert is the console's own rule, not Alertmanager's: there is nothing to silence",
            title="silence",
            severity="warning",
        )
        return
    if _client(app) is None:
        app.notify("no [alertmanager] url in the configuration", title="silence", severity="warning")
        return
    author = current_actor().describe()

    def confirmed(form: SilenceForm | None) -> None:
        if form is not None:
            app.run_worker(silence_alert(app, alert, form, author), group="silence", exit_on_error=False)

    app.push_screen(SilenceScreen(alert, author), confirmed)


async def silence_alert(app: DrConsoleApp, alert: Alert, form: SilenceForm, author: str) -> str | None:
    """POST the silence and audit it; the silence id, or None (refused, or Alertmanager said no)."""
    try:
        app.capabilities.require_write("silence an alert")  # again: this is the action, whatever called it
    except ReadOnlyRefusal as exc:
        app.refuse(exc)
        return None
    client = _client(app)
    if client is None:
        app.notify("no [alertmanager] url in the configuration", title="silence", severity="warning")
        return None
    name = alert_name(alert)
    request = SilenceRequest(
        labels=alert.labels, duration_seconds=form.duration_seconds, author=author, comment=form.comment
    )
    now = app.clock()
    silence_id: str | None = None
    try:
        silence_id = await client.silence(request, now)
        outcome, detail = (
            "ok",
            f"silence {silence_id} until {now + timedelta(seconds=form.duration_seconds):%H:%M:%S %Z}",
        )
    except (ApiError, ValueError) as exc:
        outcome, detail = "failed", str(exc)
    try:
        AuditLog(StateDir().audit_log).append(
            actor=current_actor(),
            action="alertmanager.silence",
            target=f"{alert.node}/{name}",
            outcome=outcome,
            detail=detail,
            comment=form.comment,
            duration_seconds=form.duration_seconds,
            matchers=dict(alert.labels),
            alertmanager=client.url,
        )
    except EngineError as exc:
        app.notify(f"the audit log could not be written: {exc.message}", title="audit", severity="error")
    if silence_id is None:
        app.notify(detail, title="silence failed", severity="error")
        app.record("silence", f"silencing {name} failed: {detail}", alert.node)
        return None
    app.record("silence", f"silenced {name} for {form.duration_seconds / 60:.0f} min ({form.comment})", alert.node)
    app.notify(f"{name} on {alert.node}: {detail}", title="silenced")
    return silence_id
