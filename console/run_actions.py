"""The app's playbook-run actions: choose, start, resume, confirm, cancel, and relay the events.

A mixin of ``DrConsoleApp`` (console.app), kept apart so that each module stays readable. The run
itself belongs to the launcher (the playbooks' runner, or ``console.run_stub`` until it lands);
this relays its events as messages from a worker that never touches a widget, folds them into
``RunState``, and asks for the node name before destructive steps. The runner writes the run to
the node's incident itself (started, each step, finished with its checks, and the resolution when
the target is verified); the console adds only what the responder decided here (the playbook
chosen, each confirmation), and never resolves an incident because a run ended.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from textual import work
from textual.app import App
from textual.reactive import var

from console.messages import RefusedAction, RunEventReceived
from console.run_state import RunState
from console.run_view import NeedsConfirmation, RunFinished, RunLauncher, RunSession
from console.safety import Capabilities, ReadOnlyRefusal
from console.triage_view import Recommendation

__all__ = ["RunActions"]


class RunActions(App[int]):
    """Run actions; the attributes below are the app's (set in ``DrConsoleApp.__init__``)."""

    capabilities: Capabilities
    launcher: RunLauncher | None
    run_state: RunState | None
    run_session: RunSession | None
    pending: tuple[Recommendation, str] | None
    clock: Callable[[], datetime]
    run_revision: var[int] = var(0)

    def refuse(self, exc: ReadOnlyRefusal) -> None:
        self.post_message(RefusedAction(exc.message, exc.hint or ""))

    def permitted(self, require: Callable[[str], None], what: str) -> bool:
        """Whether the mode allows ``what`` (``require``: a ``Capabilities`` check); a refusal is shown."""
        try:
            require(what)
        except ReadOnlyRefusal as exc:
            self.refuse(exc)
            return False
        return True

    def _launcher_for(self, what: str, busy: str) -> RunLauncher | None:
        """The launcher to start or resume a run with; None, the user told why, when the mode refuses
        ``what``, there is no launcher, or a run is under way (``busy`` says so)."""
        if not self.permitted(self.capabilities.require_write, what):
            return None
        if self.launcher is None:
            self.notify("no playbook runner is available", severity="warning")
            return None
        if self.run_state is not None and self.run_state.running:
            self.notify(busy, severity="warning")
            return None
        return self.launcher

    def record(self, kind: str, text: str, node: str | None = None, at: datetime | None = None) -> None:
        raise NotImplementedError  # DrConsoleApp's

    def _ensure_screen(self, name: str) -> None:
        raise NotImplementedError  # DrConsoleApp's

    def choose_playbook(self, recommendation: Recommendation, node: str) -> None:
        """Prepare a run of ``recommendation`` on ``node`` and show it (it starts on ``s``)."""
        if not self.permitted(self.capabilities.require_interactive, "choose a playbook"):
            return
        self.pending = (recommendation, node)
        if self.run_state is None or not self.run_state.running:
            self.run_state = RunState(recommendation.playbook_id, node, title=recommendation.title,
                                      simulated=bool(getattr(self.launcher, "simulated", False)))
            if self.launcher is not None:
                self.run_state.steps = tuple(self.launcher.plan(recommendation, node))
        self.record("playbook_chosen", f"chose {recommendation.playbook_id} ({recommendation.title})", node)
        self.run_revision += 1
        self._ensure_screen("run")
        self.switch_screen("run")

    def action_start_run(self) -> None:
        launcher = self._launcher_for("start a playbook run", busy="a run is already under way; cancel it first (c)")
        if launcher is None:
            return
        if self.pending is None:
            self.notify("choose a recommended playbook in Triage (2) first", severity="warning")
            return
        recommendation, node = self.pending
        session = launcher.start(recommendation, node)
        self._begin(session, recommendation.title)

    def action_resume_run(self) -> None:
        launcher = self._launcher_for("resume a playbook run", busy="a run is already under way")
        if launcher is None:
            return
        runs = list(launcher.resumable())
        if not runs:
            self.notify("no interrupted run to resume", title="resume")
            return
        newest = runs[-1]
        self._begin(launcher.resume(newest.run_id), f"resume of {newest.playbook_id}")

    def _begin(self, session: RunSession, title: str) -> None:
        self.run_session = session
        self.run_state = RunState(session.playbook_id, session.node, title=title, simulated=session.simulated)
        self.run_state.steps = tuple(session.steps())
        self.run_revision += 1
        self.drive_run(session)

    @work(exclusive=True, group="run", exit_on_error=False)
    async def drive_run(self, session: RunSession) -> None:
        """Relays the run's events as messages; never touches a widget."""
        async for event in session.events():
            self.post_message(RunEventReceived(event))

    def on_run_event_received(self, message: RunEventReceived) -> None:
        state, session, event = self.run_state, self.run_session, message.event
        if state is None or session is None:
            return
        state.apply(event)
        node = session.node
        if isinstance(event, NeedsConfirmation):
            self._ask_confirmation(session, event)
        elif isinstance(event, RunFinished) and session.simulated:
            self.record("run", f"{session.playbook_id} simulated: {event.status} (nothing was changed)", node)
        self.run_revision += 1

    def _step_row(self, step_id: str, what: str, node: str) -> None:
        """One timeline row about the responder's decision on a step: ``<step id> <what happened>``."""
        self.record("confirmation", f"{step_id} {what}", node)

    def _ask_confirmation(self, session: RunSession, event: NeedsConfirmation) -> None:
        from console.screens.confirm import ConfirmScreen

        def decided(typed: str | None) -> None:
            if typed is not None and session.confirm(event.step_id, typed):
                self._step_row(event.step_id, "confirmed by typing the node name", event.node)
            else:
                session.decline(event.step_id)
                self._step_row(event.step_id, "declined", event.node)

        self.push_screen(ConfirmScreen(event.node, event.what, event.step_id), decided)

    def action_cancel_run(self) -> None:
        if not self.permitted(self.capabilities.require_interactive, "cancel a run"):
            return
        if self.run_session is None or self.run_state is None or not self.run_state.running:
            self.notify("no run under way", title="cancel")
            return
        self.run_session.cancel()
        self.record("run", f"cancel requested for {self.run_session.playbook_id}", self.run_session.node)
