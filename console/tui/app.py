"""The Textual app: screens, the refresh worker and the incidents.

The app renders what ``playbooks`` computes: a ``FleetSource`` yields one ``FleetSnapshot`` per
tick inside a worker that never touches widgets (it posts ``SnapshotReady``); screens watch the
app's attributes (Textual ``var``s). Every action that could change something goes through
``Capabilities`` (console.tui.safety), so read-only and dashboard modes refuse it whatever the route.
SIGHUP, SIGTERM or a lost terminal end the app cleanly (console.tui.terminal); the run actions are in
console.tui.run_actions and the entry points in console.tui.launch.

Incidents are the playbooks' (``playbooks.incidents``), read and written through the incident desk
(console.adapters.incident) off the UI thread: a triage that concludes on a fault opens (or joins) the
node's incident with the diagnosis' severity, a healthy one opens none; alerts on a node with an
open incident join its timeline; after a run whose checks passed, the refresh loop asks the node's
``/ready`` and the incident resolves (its RTO clock stops) when it answers 200.
"""

from __future__ import annotations

import asyncio
import importlib
import signal
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, tzinfo
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import BindingType
from textual.reactive import var
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from console.adapters.incident import IncidentDesk, diagnosis
from console.adapters.run_adapter import RunLauncher, RunSession
from console.adapters.run_state import RunState, Verified
from console.adapters.triage_view import PathStep, Recommendation, TriageView
from console.tui.commands import COMMANDS, allowed, bindings, refused
from console.tui.messages import (
    IncidentsChanged,
    IncidentTrouble,
    NodeSelected,
    RefusedAction,
    SnapshotReady,
    SourceFailed,
    TrendRangesReady,
)
from console.tui.run_actions import RunActions
from console.tui.safety import Capabilities, ReadOnlyRefusal
from console.tui.terminal import TerminalWatch
from console.tui.themes import BUNDLED_THEMES, STATUS_DEFAULTS, LoadedTheme, load_theme
from fleet import FleetHistory, FleetSnapshot, FleetSource, Thresholds, utc_now
from playbooks.incident_alerts import AlertTracker
from playbooks.incident_model import Incident, IncidentEvent
from playbooks.incident_store import IncidentStore
from playbooks.severity import rank

__all__ = ["DrConsoleApp", "MODES"]

MODES = ("interactive", "dashboard")
FLEET_EVENTS_KEPT = 500  # fleet events (no incident) kept in memory for the Timeline
APP_CSS = Path(__file__).with_name("app.tcss")
TriageFactory = Callable[[FleetSnapshot | None, str], TriageView]


def _screen(module: str, name: str) -> Screen[Any]:
    """A new ``console.tui.screens.MODULE.NAME``, imported only now."""
    screen: Screen[Any] = getattr(importlib.import_module(f"console.tui.screens.{module}"), name)()
    return screen


class DrConsoleApp(RunActions, TerminalWatch, App[int]):
    """drconsole's console. Screens: overview, triage, run, timeline (interactive) or dashboard."""

    TITLE = "drconsole"
    BINDINGS: ClassVar[list[BindingType]] = list(bindings())  # from console.tui.commands' table
    """
    | Key(s) | Description |
    | :- | :- |
    | 1 | Overview: every node at a glance. |
    | 2 | Triage the selected node. |
    | 3 | Run: the playbook run. |
    | 4 | Timeline of the incident. |
    | ? | Help: every key and command. |
    | ctrl+p | Command palette. |
    | ctrl+q | Quit (a running playbook keeps its journal). |
    """

    # Installed on first use (Textual's SCREENS): first paint waits only for the first screen's module.
    SCREENS: ClassVar[dict[str, Callable[[], Screen[Any]]]] = {
        "overview": lambda: _screen("overview", "OverviewScreen"),
        "dashboard": lambda: _screen("dashboard", "DashboardScreen"),
        "triage": lambda: _screen("triage", "TriageScreen"),
        "run": lambda: _screen("run", "RunScreen"),
        "timeline": lambda: _screen("timeline", "TimelineScreen"),
        "node": lambda: _screen("node", "NodeScreen"),
    }

    # ``var``, not ``reactive``: a reactive on the app repaints the whole screen when it changes,
    # which at 1 Hz is every byte of the terminal every second. Screens watch these and update
    # the widgets concerned.
    snapshot: var[FleetSnapshot | None] = var(None)
    now: var[datetime | None] = var(None)
    selected_node: var[str | None] = var(None)
    incident_revision: var[int] = var(0)
    run_revision: var[int] = var(0)

    def __init__(
        self,
        *,
        source: FleetSource | None = None,
        mode: str = "interactive",
        read_only: bool = False,
        theme: LoadedTheme | None = None,
        thresholds: Thresholds | None = None,
        clock: Callable[[], datetime] = utc_now,
        tz: tzinfo | None = None,
        refresh_seconds: float | None = 1.0,
        initial: Sequence[FleetSnapshot] = (),
        launcher: RunLauncher | None = None,
        triage_factory: TriageFactory | None = None,
        report_dir: Path | None = None,
        notice: str = "",
        watch_terminal: bool = False,
        node_urls: Mapping[str, str] | None = None,
        incident_store: IncidentStore | None = None,
        fleet_targets: Collection[str] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        theme = theme or load_theme("dark")
        css = [APP_CSS] + ([theme.tcss] if theme.tcss is not None else [])
        super().__init__(css_path=css)  # type: ignore[arg-type]
        self.mode_name = mode
        self.capabilities = Capabilities(read_only=read_only or mode == "dashboard", dashboard=mode == "dashboard")
        self.source = source
        self.thresholds = thresholds or Thresholds()
        self.clock = clock
        self.tz = tz
        self.refresh_seconds = refresh_seconds
        # One trend point per five ticks, 15 minutes of them per node: a card's sparklines then move
        # every few seconds, not on every tick (bytes over a slow link). Without a refresh loop
        # (recorded fleets), one point per snapshot.
        self.sparkline_seconds: float | None = 5 * refresh_seconds if refresh_seconds else None
        self.initial = tuple(initial)
        # No launcher at all when read-only: nothing can start a run, whatever asks.
        self.launcher = None if not self.capabilities.can_write else launcher
        self.triage_factory: TriageFactory = triage_factory or self._snapshot_triage
        self.report_dir = report_dir or Path.cwd()
        self.notice = notice
        self.watch_terminal = watch_terminal
        # Work that would slow the first frame (the demo's node processes) starts once it is shown.
        self.after_first_paint: list[Callable[[], object]] = []
        self.history = FleetHistory(
            span_seconds=180 * (self.sparkline_seconds or 5), bucket_seconds=self.sparkline_seconds or 0
        )
        self.alert_tracker = AlertTracker()
        self.events: list[IncidentEvent] = []  # fleet events: what happened outside any incident
        self.incidents: dict[str, Incident] = {}  # id -> incident, as the store last read them
        self.node_urls = dict(node_urls or {})  # where to ask /ready once a run's checks passed
        # What this console's incidents are about: its nodes' names and data dirs (None: any target).
        # The state dir is per user, not per fleet: an incident a CLI run opened on another data
        # dir is counted in the header ("open elsewhere"), never passed off as this fleet's.
        self.fleet_targets = None if fleet_targets is None else frozenset(fleet_targets)
        self.desk = IncidentDesk(
            incident_store or IncidentStore(clock=lambda: self.clock().timestamp()),
            writable=self.capabilities.can_write,
            on_change=lambda incidents: self.post_message(IncidentsChanged(incidents)),
            on_error=lambda error: self.post_message(IncidentTrouble(error)),
        )
        self.triage_sessions: dict[str, TriageView] = {}
        self.run_state: RunState | None = None
        self.run_session: RunSession | None = None
        self.pending: tuple[Recommendation, str] | None = None
        self.exit_reason = ""
        self._signals: list[tuple[signal.Signals, Any]] = []
        # After a hang-up, the process ends this long after the app was told to exit, whatever
        # happens (None: never forced; the tests run the app inside pytest).
        self.hard_exit_seconds: float | None = 5.0 if watch_terminal else None
        self._last_source_error = ""
        # Each theme's own stylesheet (wall: heavy borders, more room), swapped in with the theme.
        self.theme_css: dict[str, Path | None] = {theme.theme.name: theme.tcss}
        self._applied_theme_css = theme.tcss
        self.register_theme(theme.theme)
        self.theme = theme.theme.name

    # ---------------------------------------------------------------- set-up
    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(STATUS_DEFAULTS)

    @property
    def dashboard(self) -> bool:
        return self.capabilities.dashboard

    def on_mount(self) -> None:
        for snapshot in self.initial:
            self._apply_snapshot(snapshot)
        self.now = self.clock()
        self.set_interval(1.0, self._tick_clock)
        if self.source is not None and self.refresh_seconds:
            self.refresh_fleet()
        self.push_screen("dashboard" if self.dashboard else "overview")
        self._install_signal_handlers()
        if self.watch_terminal:
            self.set_interval(2.0, self._check_terminal)

    def on_ready(self) -> None:
        """Textual's Ready: the first frame is on the terminal."""
        for start in self.after_first_paint:
            start()

    def action_change_theme(self) -> None:
        """The theme picker; the bundled themes are loaded when it is first opened, not at start-up."""
        for name in BUNDLED_THEMES:
            loaded = load_theme(name)
            theme = loaded.theme
            self.theme_css.setdefault(theme.name, loaded.tcss)
            if theme.name not in self.available_themes:
                self.register_theme(theme)
        super().action_change_theme()

    def watch_theme(self, name: str) -> None:
        """The theme's ``.tcss`` comes and goes with it: choosing "wall" in the palette changes the layout
        (borders, padding), not only the colours. Textual reparses the stylesheet after a theme change
        (``App._watch_theme`` -> ``refresh_css``), so swapping the source here is enough."""
        wanted = self.theme_css.get(name)
        if wanted == self._applied_theme_css:
            return
        if self._applied_theme_css is not None:
            self.stylesheet.source.pop((str(self._applied_theme_css), ""), None)
        if wanted is not None:
            self.stylesheet.read(wanted)
        self._applied_theme_css = wanted
        self.css_path = [APP_CSS, *([wanted] if wanted is not None else [])]

    async def on_unmount(self) -> None:
        self._remove_signal_handlers()
        self.desk.close()  # what the responder did is on disk before the app ends
        if self.source is not None:
            await self.source.aclose()

    def _tick_clock(self) -> None:
        self.now = self.clock()

    # ---------------------------------------------------------------- refresh
    @work(exclusive=True, group="refresh", exit_on_error=False)
    async def refresh_fleet(self) -> None:
        """One snapshot per tick; posts messages only (a worker never touches widgets)."""
        from engines.errors import EngineError  # not at import time: first paint does not wait for it

        assert self.source is not None and self.refresh_seconds
        # A source that keeps history (Prometheus) gives the trends as ranges, once per trend bucket,
        # after the tick's snapshot: first paint never waits for them.
        ranges = getattr(self.source, "trend_ranges", None)
        loop = asyncio.get_running_loop()
        ranges_due = loop.time()
        while True:
            try:
                snapshot = await self.source.collect()
            except (EngineError, OSError, ValueError) as exc:
                self.post_message(SourceFailed(f"{type(exc).__name__}: {exc}"))
            else:
                self.post_message(SnapshotReady(snapshot))
            if ranges is not None and loop.time() >= ranges_due:
                step = self.history.bucket_seconds or self.refresh_seconds
                ranges_due = loop.time() + step
                try:
                    found = await ranges(self.history.span_seconds, step)
                except (EngineError, OSError, ValueError):
                    found = None  # the ring buffer's trends stay; the tick says what is wrong with the source
                if found:
                    self.post_message(TrendRangesReady(found))
            await asyncio.sleep(self.refresh_seconds)

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        self._apply_snapshot(message.snapshot)

    def on_trend_ranges_ready(self, message: TrendRangesReady) -> None:
        self.history.load(message.ranges)

    def on_source_failed(self, message: SourceFailed) -> None:
        if message.error != self._last_source_error:
            self._last_source_error = message.error
            self.record("source", f"refresh failed: {message.error}")
            self.notify(message.error, title="refresh failed", severity="error")

    def _apply_snapshot(self, snapshot: FleetSnapshot) -> None:
        self.history.add(snapshot)
        for event in self.alert_tracker.update(snapshot):
            self._fleet_event(event)
            if event.node is not None:  # an alert on a node with an open incident is part of its story
                self.desk.record_on(event.node, event)
        self.snapshot = snapshot
        if (self.selected_node is None or snapshot.node(self.selected_node) is None) and snapshot.nodes:
            worst = max(snapshot.nodes, key=lambda node: (node.health.rank, len(node.alerts)))
            self.selected_node = worst.name
        self._verify_recoveries(snapshot)
        self.desk.refresh()  # what a runner, the CLI or a node's agent wrote meanwhile

    def _verify_recoveries(self, snapshot: FleetSnapshot) -> None:
        """After a run whose checks passed, ask the node's /ready: the incident resolves when it answers 200."""
        for incident in list(self.incidents.values()):
            if not incident.awaiting_verification:
                continue
            node = snapshot.node(incident.target)
            url = incident.ready_url or self.node_urls.get(incident.target)
            if url is None and node is not None and node.source == "http":
                url = node.address
            if url is not None and (node is None or node.reachable):
                self.desk.verify(incident, url)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a worker's unexpected error becomes a dialog."""
        if event.state == WorkerState.ERROR:
            from console.tui.screens.error_dialog import ErrorDialog

            error = event.worker.error
            self.push_screen(
                ErrorDialog(f"{event.worker.name or 'background task'} failed", f"{type(error).__name__}: {error}")
            )

    # ---------------------------------------------------------------- incidents and the timeline
    def on_incidents_changed(self, message: IncidentsChanged) -> None:
        self.incidents = message.incidents
        self.incident_revision += 1

    def on_incident_trouble(self, message: IncidentTrouble) -> None:
        self.notify(message.error, title="incident record", severity="error")

    def of_this_fleet(self, incident: Incident) -> bool:
        return self.fleet_targets is None or incident.target in self.fleet_targets

    @property
    def incidents_elsewhere(self) -> int:
        """Open incidents on targets that are not this console's nodes (a CLI run on another data dir)."""
        return sum(1 for incident in self.incidents.values() if incident.is_open and not self.of_this_fleet(incident))

    @property
    def incident(self) -> Incident | None:
        """The headline incident (status bar): the worst open one of this fleet, else the one that ended last
        this session."""
        found = [incident for incident in self.incidents.values() if self.of_this_fleet(incident)]
        live = [incident for incident in found if incident.is_open]
        if live:
            return min(live, key=lambda incident: (rank(incident.severity), incident.opened_at))
        return max(found, key=lambda incident: incident.resolved_at or incident.closed_at or 0.0, default=None)

    def open_incident_for(self, node: str | None) -> Incident | None:
        if node is None:
            return None
        return next(
            (incident for incident in self.incidents.values() if incident.target == node and incident.is_open), None
        )

    def incident_for(self, node: str | None) -> Incident | None:
        """The node's open incident, else the one of this session that ended last on it."""
        found = self.open_incident_for(node)
        if found is not None or node is None:
            return found
        ended = [incident for incident in self.incidents.values() if incident.target == node]
        return max(ended, key=lambda incident: incident.opened_at, default=None)

    def timeline_incident(self) -> Incident | None:
        """What the Timeline shows and ``e`` exports: the selected node's incident, else the headline."""
        return self.incident_for(self.selected_node) or self.incident

    def timeline(self) -> list[IncidentEvent]:
        incident = self.timeline_incident()
        return list(incident.events) if incident is not None else list(self.events)

    def recovery_verified(self, node: str, verified: Verified) -> None:
        """The runner resolved ``node``'s incident in the store at ``verified.at``: show it now."""
        self.desk.refresh()

    def record(self, kind: str, text: str, node: str | None = None, at: datetime | None = None) -> None:
        """An event of the fleet's log, and of ``node``'s open incident when it has one (and the console may write)."""
        event = IncidentEvent((at or self.clock()).timestamp(), kind, text, node)
        self._fleet_event(event)
        if node is not None:
            self.desk.record_on(node, event)

    def _fleet_event(self, event: IncidentEvent) -> None:
        self.events.append(event)
        del self.events[:-FLEET_EVENTS_KEPT]
        self.incident_revision += 1

    # The Triage screen's answers; the desk applies the rules (playbooks.incident_triage).
    def triage_answered(self, view: TriageView, step: PathStep) -> None:
        moment = self.clock().timestamp()
        if self.desk.writable:
            self.desk.answered(view.node_name, step, moment)
        else:
            verdict = "yes" if step.answer else "no"
            kind = "override" if step.overridden else "answer"
            self._fleet_event(
                IncidentEvent(moment, kind, f"{step.question} {verdict} ({step.probe.evidence})", view.node_name)
            )
        found = diagnosis(view)
        if found is None:
            return
        if self.desk.writable:
            start = self.alert_tracker.first_active_at(view.node_name)
            story = [
                event
                for event in self.events
                if event.node == view.node_name
                and start is not None
                and event.time >= start
                and event.kind in ("alert", "alert_cleared")
            ]
            self.desk.concluded(view.node_name, found, story, moment)
        else:
            what = f"{found.severity}: {found.summary}" if found.severity else f"no fault found ({found.summary})"
            self._fleet_event(IncidentEvent(moment, "triage", f"triage: {what}", view.node_name))

    def triage_undone(self, view: TriageView, step: PathStep) -> None:
        moment = self.clock().timestamp()
        if self.desk.writable:
            self.desk.undone(view.node_name, step.question, moment)
        else:
            self._fleet_event(
                IncidentEvent(moment, "answer_undone", f"undid the answer to {step.question}", view.node_name)
            )

    # ---------------------------------------------------------------- actions
    def on_refused_action(self, message: RefusedAction) -> None:
        self.notify(f"{message.action}\n{message.reason}", title="refused", severity="warning")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The command table's rule (console.tui.commands.refused): a key or palette entry for a write is
        disabled when read-only, and only Help and Quit exist on the wall."""
        return not refused(action, read_only=not self.capabilities.can_write, dashboard=self.dashboard)

    def action_show_screen(self, name: str) -> None:
        try:
            self.capabilities.require_interactive(f"show {name}")
        except ReadOnlyRefusal as exc:
            self.refuse(exc)
            return
        if name not in ("overview", "triage", "run", "timeline", "node"):
            return
        self.switch_screen(name)

    def action_help(self) -> None:
        from console.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def on_node_selected(self, message: NodeSelected) -> None:
        self.selected_node = message.name
        if message.activate:
            self.action_show_screen("triage")
        elif message.screen is not None:
            self.action_show_screen(message.screen)

    def action_pick_playbook(self) -> None:
        """ "Run playbook…" (the palette): any playbook of the library on a node, its dry-run plan shown first."""
        from console.tui.screens.playbook_picker import PlaybookPicker

        if not self.permitted(self.capabilities.require_write, "run a playbook"):
            return
        if self.launcher is None:
            self.notify("this console cannot run playbooks", severity="warning")
            return
        snapshot = self.snapshot
        engines = {node.name: node.engine for node in snapshot.nodes} if snapshot is not None else {}
        nodes = [
            (name, engines.get(name) or (spec.engine if spec.engine else None))
            for name, spec in self.launcher.nodes.items()
        ]
        others = [name for name in engines if name not in self.launcher.nodes]
        nodes += [(name, engines[name]) for name in others]

        def picked(choice: tuple[str, str] | None) -> None:
            if choice is None:
                return
            playbook_id, node = choice
            self.selected_node = node
            self.choose(playbook_id, node)
            if self.run_state is not None and self.run_state.playbook_id == playbook_id and not self.run_state.started:
                self.run_state.plan_wanted = True  # the dry-run plan goes to the log as soon as it is known
                if self.run_state.plan is not None:
                    self.run_state.log_plan()
                self.run_revision += 1

        self.push_screen(PlaybookPicker(self.launcher, nodes, self.selected_node, unreachable=others), picked)

    def action_show_node(self) -> None:
        """The selected node's trends, plotted (``t`` on a card)."""
        if self.selected_node is None:
            self.notify("select a node on the Overview first", title="trends", severity="warning")
            return
        self.action_show_screen("node")

    # Alerts (console.tui.screens.silence): enter on the strip triages from the alert's question, s silences it.
    def on_alert_strip_selected(self, message: Any) -> None:
        from console.tui.screens.silence import triage_alert

        triage_alert(self, message.alert)

    def on_alert_strip_silence_requested(self, message: Any) -> None:
        self.action_silence_alert(message.alert)

    def action_silence_alert(self, alert: Any = None) -> None:
        from console.tui.screens.silence import request_silence
        from console.tui.widgets.alert_strip import AlertStrip

        if alert is None:  # from the palette: the alert under the strip's cursor
            strips = self.screen.query(AlertStrip)
            alert = strips.first().highlighted if strips else None
        request_silence(self, alert)

    def _snapshot_triage(self, snapshot: FleetSnapshot | None, node: str) -> TriageView:
        """The playbooks' tree for ``node`` answered from the fleet snapshot (no config: no data dir, no specs)."""
        from console.adapters.triage_adapter import PlaybookTriage

        return PlaybookTriage(node, snapshot=snapshot, thresholds=self.thresholds)

    def triage(self, node: str) -> TriageView:
        if node not in self.triage_sessions:
            self.triage_sessions[node] = self.triage_factory(self.snapshot, node)
        return self.triage_sessions[node]

    def action_export_report(self) -> Path | None:
        try:
            self.capabilities.require_write("export the incident report")
        except ReadOnlyRefusal as exc:
            self.refuse(exc)
            return None
        from engines.fsutil import atomic_write_text
        from playbooks.incident_report import report_markdown

        shown = self.timeline_incident()
        if shown is None:
            self.notify("no incident: one opens when a triage finds a fault (2)", title="export", severity="warning")
            return None
        self.desk.flush(timeout=5.0)  # every event given so far is in the report
        try:
            incident = self.desk.store.load(shown.id)
        except Exception as exc:  # noqa: BLE001 - an unreadable state dir is told, not raised
            self.notify(f"cannot read {shown.id}: {exc}", title="export failed", severity="error")
            return None
        path = self.report_dir / f"{incident.id}.md"
        text = report_markdown(incident, now=self.clock().timestamp(), tz=self.tz)
        try:
            self.report_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, text)
        except OSError as exc:
            self.notify(f"cannot write {path}: {exc.strerror or exc}", title="export failed", severity="error")
            return None
        self.desk.record(incident.id, "export", f"incident report written to {path}")
        self.notify(str(path), title="report exported")
        return path

    # ---------------------------------------------------------------- command palette
    def get_system_commands(self, screen: Screen[object]) -> Sequence[SystemCommand]:  # type: ignore[override]
        here = str(getattr(screen, "SCREEN_LABEL", "")).lower()
        commands = [
            SystemCommand(command.title, command.help, partial(self.run_action, command.action))
            for command in COMMANDS
            if allowed(command, read_only=self.capabilities.read_only, dashboard=self.dashboard, screen=here)
        ]
        commands.append(
            SystemCommand("Theme", "Change the colours (dark, light, wall, colorblind)", self.action_change_theme)
        )
        return commands
