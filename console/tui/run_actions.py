"""The app's playbook-run actions: choose, plan, start, resume, confirm, cancel, and relay the events.

A mixin of ``DrConsoleApp`` (console.tui.app), kept apart so that each module stays readable. Every run
goes through the one launcher (console.adapters.run_adapter.RunLauncher) and its runner; the worker that
drives it posts the runner's events as messages and never touches a widget. They are folded into
``RunState``; destructive steps wait for the node name to be typed. The runner writes the run to the
node's incident itself (started, each step, finished with its checks, and the resolution when the
target is verified ready: playbooks.incident_store); the console adds only what the responder
decided here (the playbook chosen, each confirmation), and never resolves an incident because a run
ended.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from textual import work
from textual.app import App
from textual.reactive import var

from console.adapters.run_adapter import CannotAct, RunLauncher, RunSession
from console.adapters.run_state import RunState, Verified
from console.adapters.triage_view import Recommendation
from console.tui.messages import RefusedAction, RunEndedReceived, RunEventReceived, RunPlanned
from console.tui.safety import Capabilities, ReadOnlyRefusal

__all__ = ["RunActions"]


class RunActions(App[int]):
    """Run actions; the attributes below are the app's (set in ``DrConsoleApp.__init__``)."""

    capabilities: Capabilities
    launcher: RunLauncher | None
    run_state: RunState | None
    run_session: RunSession | None
    pending: tuple[Recommendation, str] | None
    selected_node: var[str | None]
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

    def record(self, kind: str, text: str, node: str | None = None, at: datetime | None = None) -> None:
        raise NotImplementedError  # DrConsoleApp's

    def _changed(self) -> None:
        self.run_revision += 1

    # ---------------------------------------------------------------- choose and plan
    def choose_playbook(self, recommendation: Recommendation, node: str) -> None:
        """Prepare a run of ``recommendation`` on ``node`` and show it with its plan (it starts on ``s``)."""
        if not self.permitted(self.capabilities.require_interactive, "choose a playbook"):
            return
        self.pending = (recommendation, node)
        if self.run_state is None or not self.run_state.running:
            self.run_state = self._fresh_state(recommendation, node)
        self.record("playbook_chosen", f"chose {recommendation.playbook_id} ({recommendation.title})", node)
        self._changed()
        self.switch_screen("run")

    def choose(self, playbook_id: str, node: str) -> None:
        """Prepare a run of any playbook of the library on ``node`` (the Run screen shows its plan first)."""
        if self.launcher is None:
            self.notify("this console cannot run playbooks", severity="warning")
            return
        try:
            playbook = self.launcher.library.get(playbook_id)
        except Exception as exc:  # noqa: BLE001 - an unknown id: said, not raised
            self.notify(getattr(exc, "message", None) or str(exc), title="no such playbook", severity="warning")
            return
        self.choose_playbook(
            Recommendation(
                playbook.id, playbook.title, playbook.severity, target_rto_seconds=playbook.target_rto_seconds
            ),
            node,
        )

    def _fresh_state(self, recommendation: Recommendation, node: str) -> RunState:
        state = RunState(recommendation.playbook_id, node, title=recommendation.title)
        launcher = self.launcher
        if launcher is None:
            return state  # read-only: nothing can run, the screen says so
        state.target = launcher.where(node)
        state.cannot = launcher.check(node)
        if not state.cannot:
            state.planning = True
            self.plan_run(launcher, recommendation.playbook_id, node)
        return state

    @work(thread=True, exclusive=True, group="run-plan", exit_on_error=False)
    def plan_run(self, launcher: RunLauncher, playbook_id: str, node: str) -> None:
        """The dry run, off the UI thread (a remote node's plan is a request)."""
        try:
            plan = launcher.plan(playbook_id, node)
        except CannotAct as exc:
            self.post_message(RunPlanned(node, playbook_id, None, str(exc)))
        except Exception as exc:  # noqa: BLE001 - an engine or playbook error is shown, not raised in the UI
            message = getattr(exc, "message", None) or str(exc)
            hint = getattr(exc, "hint", None)
            self.post_message(RunPlanned(node, playbook_id, None, message + (f" ({hint})" if hint else "")))
        else:
            self.post_message(RunPlanned(node, playbook_id, plan))

    def on_run_planned(self, message: RunPlanned) -> None:
        state = self.run_state
        if state is None or state.node != message.node or state.playbook_id != message.playbook:
            return
        state.planning = False
        if message.plan is not None:
            state.show_plan(message.plan)
            if state.plan_wanted:
                state.log_plan()
        elif not state.started:
            state.cannot = f"no plan: {message.error}"
        self._changed()

    def action_plan_run(self) -> None:
        """``p``: the dry-run plan of the chosen playbook, into the log (nothing is changed)."""
        if not self.permitted(self.capabilities.require_interactive, "show a playbook's plan"):
            return
        state = self.run_state
        if state is None or self.launcher is None:
            self.notify("choose a playbook in Triage (2) first", title="plan", severity="warning")
            return
        if state.cannot and not state.started:
            why = self.launcher.check(state.node)
            if why:
                self.notify(why, title="plan", severity="warning")
                return
            state.cannot = ""  # the plan failed before (an unreachable node): ask again
        if state.plan is None:
            state.planning = state.plan_wanted = True
            self.plan_run(self.launcher, state.playbook_id, state.node)
        else:
            state.log_plan()
        self._changed()

    # ---------------------------------------------------------------- start, resume
    def _launcher_for(self, what: str) -> RunLauncher | None:
        """The launcher, or None (the responder told why): read-only, none, or a run under way."""
        if not self.permitted(self.capabilities.require_write, what):
            return None
        if self.launcher is None:
            self.notify("this console cannot run playbooks", severity="warning")
            return None
        if self.run_state is not None and self.run_state.running:
            self.notify("a run is under way: cancel it first (c)", title=what, severity="warning")
            return None
        return self.launcher

    def action_start_run(self) -> None:
        launcher = self._launcher_for("start a playbook run")
        if launcher is None:
            return
        if self.pending is None:
            self.notify("choose a recommended playbook in Triage (2) first", severity="warning")
            return
        recommendation, node = self.pending
        current = self.run_state
        if current is not None and current.cannot and current.node == node and not current.started:
            self.notify(f"{current.cannot}\n(p asks for the plan again)", title="cannot start", severity="warning")
            return
        try:
            session = launcher.start(recommendation.playbook_id, node)
        except CannotAct as exc:
            self._cannot(recommendation, node, str(exc), "start")
            return
        state = self.run_state
        if state is None or state.node != node or state.playbook_id != recommendation.playbook_id or state.done:
            previous_plan = state.plan if state is not None and state.node == node else None
            state = RunState(recommendation.playbook_id, node, title=recommendation.title, target=launcher.where(node))
            if previous_plan is not None and previous_plan.playbook == recommendation.playbook_id:
                state.show_plan(previous_plan)
        self._begin(session, state)

    def action_resume_run(self) -> None:
        launcher = self._launcher_for("resume a playbook run")
        if launcher is None:
            return
        node = self._run_node()
        if node is None:
            self.notify("select a node first: there is no run to resume", title="resume", severity="warning")
            return
        try:
            session = launcher.resume(node)
        except CannotAct as exc:
            self.notify(str(exc), title="nothing to resume", severity="warning")
            self.record("run", f"resume refused: {exc}", node)
            return
        except Exception as exc:  # noqa: BLE001 - a damaged journal: said, not raised
            self.notify(getattr(exc, "message", None) or str(exc), title="cannot resume", severity="error")
            return
        title = self._playbook_title(launcher, session.playbook_id)
        state = RunState(session.playbook_id, node, title=title, target=launcher.where(node), run_id=session.run_id)
        state.resume_from(session.steps, session.reasons)
        self.record("run", f"resuming {session.playbook_id} run {session.run_id}", node)
        self._begin(session, state)

    def _run_node(self) -> str | None:
        if self.run_state is not None:
            return self.run_state.node
        if self.pending is not None:
            return self.pending[1]
        return self.selected_node

    @staticmethod
    def _playbook_title(launcher: RunLauncher, playbook_id: str) -> str:
        try:
            return str(launcher.library.get(playbook_id).title)
        except Exception:  # noqa: BLE001 - a playbook gone from the library: its id is title enough
            return playbook_id

    def _cannot(self, recommendation: Recommendation, node: str, why: str, what: str) -> None:
        state = RunState(recommendation.playbook_id, node, title=recommendation.title, cannot=why)
        self.run_state = state
        self.notify(why, title=f"cannot {what}", severity="warning")
        self.record("run", f"cannot {what} {recommendation.playbook_id}: {why}", node)
        self._changed()

    def _begin(self, session: RunSession, state: RunState) -> None:
        self.run_session = session
        self.run_state = state
        state.started = True  # the worker's first event confirms it; keys see a run under way at once
        self._changed()
        self.drive_run(session)

    @work(exclusive=True, group="run", exit_on_error=False)
    async def drive_run(self, session: RunSession) -> None:
        """Relays the run's events as messages; never touches a widget."""
        from console.adapters.run_adapter import RunEnded

        async for item in session.events():
            if isinstance(item, RunEnded):
                self.post_message(RunEndedReceived(item))
            else:
                self.post_message(RunEventReceived(item))

    # ---------------------------------------------------------------- events
    def on_run_event_received(self, message: RunEventReceived) -> None:
        state, session, event = self.run_state, self.run_session, message.event
        if state is None or session is None:
            return
        state.apply(event)
        if event.kind == "needs_confirmation":
            self._ask_confirmation(session, event.step_id or "", event.message)
        self._changed()

    def on_run_ended_received(self, message: RunEndedReceived) -> None:
        state, session, ended = self.run_state, self.run_session, message.ended
        if state is None or session is None:
            return
        state.cancelled = session.cancelled
        now = self.clock()  # one moment: the outcome, then the verification, in that order on the timeline
        verified = None
        if ended.verified is not None:  # when the node said it was ready, else when the console heard it
            at = datetime.fromtimestamp(ended.verified_at, UTC) if ended.verified_at is not None else now
            verified = Verified(at, ended.verified)
        state.settle(ended.result, ended.error, verified, ended.unverified)
        if verified is not None:
            self.recovery_verified(session.node, verified)
        self._changed()

    def recovery_verified(self, node: str, verified: Verified) -> None:
        """The run's runner found ``node`` ready: the incident was resolved in the store by the runner
        (``IncidentStore.record_verified``); the console reads it again so the clock shows it stopped."""
        raise NotImplementedError  # DrConsoleApp's

    def _step_row(self, step_id: str, what: str, node: str) -> None:
        """One timeline row about the responder's decision on a step: ``<step id> <what happened>``."""
        self.record("confirmation", f"{step_id} {what}", node)

    def _ask_confirmation(self, session: RunSession, step_id: str, what: str) -> None:
        from console.tui.screens.confirm import ConfirmScreen

        def decided(typed: str | None) -> None:
            if typed is not None and session.confirm(step_id, typed):
                self._step_row(step_id, "confirmed by typing the node name", session.node)
            else:
                session.decline(step_id)
                self._step_row(step_id, "declined", session.node)

        self.push_screen(ConfirmScreen(session.node, what, step_id), decided)

    def action_cancel_run(self) -> None:
        if not self.permitted(self.capabilities.require_interactive, "cancel a run"):
            return
        if self.run_session is None or self.run_state is None or not self.run_state.running:
            self.notify("no run under way", title="cancel")
            return
        self.run_session.cancel()
        self.run_state.cancelled = True
        self.record("run", f"cancel requested for {self.run_session.playbook_id}", self.run_session.node)
        self._changed()
