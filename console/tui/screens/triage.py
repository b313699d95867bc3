"""Triage: the decision tree, the current question with its evidence, accept or override, the path.

Probes can be slow (a verify reads every page of a data dir), so they run in a thread worker: the
screen shows "probing…" with a spinner until the evidence arrives, the responder may answer
before it does, and leaving the screen cancels the probe (its answer, when it comes, is dropped).
Each answer goes to the app (``triage_answered``), which hands it to the incident desk: a walk that
ends on a fault opens (or joins) the node's incident with the diagnosis' severity, one that ends
healthy opens none (playbooks.incident_triage); read-only mode writes nothing.
"""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.timer import Timer
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from console.adapters.triage_view import ProbeAnswer, TreeNode, TriageView
from console.tui.commands import bindings
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.decision_tree import DecisionTreeWidget
from console.tui.widgets.evidence_panel import EvidencePanel
from console.tui.widgets.key_bar import KeyBar
from console.tui.widgets.text import line

__all__ = ["ProbeFinished", "TriageFailed", "TriageReady", "TriageScreen", "SPINNER"]

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
PROBE_GROUP = "triage-probe"


class TriageReady(Message):
    """The walk for ``node`` was built (the playbook library loaded) off the UI thread."""

    def __init__(self, node: str, view: TriageView) -> None:
        super().__init__()
        self.node = node
        self.view = view


class TriageFailed(Message):
    """The walk for ``node`` could not be built (a broken playbook library): ``error`` says why."""

    def __init__(self, node: str, error: str) -> None:
        super().__init__()
        self.node = node
        self.error = error


class ProbeFinished(Message):
    """The probe of ``question`` on ``node`` answered (posted by the probe worker)."""

    def __init__(self, node: str, question: str, probe: ProbeAnswer) -> None:
        super().__init__()
        self.node = node
        self.question = question
        self.probe = probe


class TriageScreen(ConsoleScreen):
    """Answer each question from the evidence; the answers go on the node's incident when the walk finds a fault."""

    SCREEN_LABEL = "Triage"
    BINDINGS: ClassVar[list[BindingType]] = [
        *bindings("triage"),  # a y n u: console.tui.commands' table
        Binding("escape", "app.show_screen('overview')", "Back", show=False),
    ]
    """
    | Key(s) | Description |
    | :- | :- |
    | a | Accept the probe's answer. |
    | y | Answer yes (an override when the probe said no). |
    | n | Answer no (an override when the probe said yes). |
    | u | Undo the last answer. |
    | enter | On a recommended playbook: open it in Run. |
    | escape | Back to the Overview. |
    """

    def __init__(self) -> None:
        super().__init__()
        self._probing: tuple[str, str] | None = None  # (node, question) of the probe under way
        self._spinner: Timer | None = None
        self._frame = 0
        self._preparing: str | None = None
        self._failed: tuple[str, str] | None = None  # (node, why) the walk could not be built

    def compose(self) -> ComposeResult:
        yield self.status_bar()
        yield Static(id="triage-title")
        with Horizontal(id="triage-body"):
            yield DecisionTreeWidget(id="triage-tree")
            with Vertical(id="triage-side"):
                yield EvidencePanel(id="triage-evidence")
                yield Static(id="triage-path")
                yield OptionList(id="triage-recommended")
        yield KeyBar()

    def on_mount(self) -> None:
        super().on_mount()
        self.watch(self.console, "selected_node", self._show_if_current, init=False)

    def on_screen_resume(self) -> None:
        self._show()

    def on_screen_suspend(self) -> None:
        # Leaving the screen cancels the probe; coming back starts it again if it had not answered.
        self.workers.cancel_group(self, PROBE_GROUP)
        self._probing = None
        self._stop_spinner()

    def _show_if_current(self) -> None:
        # Drawing the tree costs; a screen not shown is redrawn when it is shown again.
        if self.is_current:
            self._show()

    # ------------------------------------------------------------------ the walk and its probes
    def view(self) -> TriageView | None:
        """The walk of the selected node if it exists; building it (loading the library) is the worker's job."""
        node = self.console.selected_node
        if node is None:
            return None
        return self.console.triage_sessions.get(node)

    @work(thread=True, exclusive=True, group="triage-prepare", exit_on_error=False)
    def _prepare(self, node: str) -> None:
        try:
            view = self.console.triage_factory(self.console.snapshot, node)
        except Exception as exc:  # noqa: BLE001 - a broken library is shown, not raised into the UI
            self.post_message(TriageFailed(node, f"{type(exc).__name__}: {exc}"))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(TriageReady(node, view))

    def on_triage_failed(self, message: TriageFailed) -> None:
        self._preparing = None
        self._failed = (message.node, message.error)
        self._show_if_current()

    def on_triage_ready(self, message: TriageReady) -> None:
        self.console.triage_sessions.setdefault(message.node, message.view)
        self._preparing = None
        self._show_if_current()

    @work(thread=True, exclusive=True, group=PROBE_GROUP, exit_on_error=False)
    def _probe(self, view: TriageView, question: str) -> None:
        """Runs one probe (it may block on the disk); posts its answer unless the screen was left."""
        probe = view.probe(question)
        if not get_current_worker().is_cancelled:
            self.post_message(ProbeFinished(view.node_name, question, probe))

    def on_probe_finished(self, message: ProbeFinished) -> None:
        if self._probing == (message.node, message.question):
            self._probing = None
            self._stop_spinner()
        self._show_if_current()

    def _start_spinner(self) -> None:
        if self._spinner is None:
            self._spinner = self.set_interval(0.25, self._spin)

    def _stop_spinner(self) -> None:
        if self._spinner is not None:
            self._spinner.stop()
            self._spinner = None

    def _spin(self) -> None:
        self._frame += 1
        self.query_one(EvidencePanel).probe = self._probing_answer()

    def _probing_answer(self) -> ProbeAnswer:
        frame = SPINNER[self._frame % len(SPINNER)]
        return ProbeAnswer(None, f"{frame} probing… (the evidence appears here; y/n answer without it)")

    # ------------------------------------------------------------------ drawing
    def _show(self) -> None:
        node = self.console.selected_node
        title = self.query_one("#triage-title", Static)
        evidence = self.query_one(EvidencePanel)
        recommended = self.query_one("#triage-recommended", OptionList)
        view = self.view()
        if node is None:
            title.update(line("[dim]no node selected: pick one on the Overview (1)[/dim]"))
            evidence.question = None
            return
        if view is None:
            if self._failed is not None and self._failed[0] == node:
                title.update(
                    line(
                        "Triage of [b]$node[/b] · ✖ the decision tree cannot be loaded: $why",
                        node=node,
                        why=self._failed[1],
                    )
                )
                return
            title.update(line("Triage of [b]$node[/b] · [dim]loading the decision tree…[/dim]", node=node))
            if self._preparing != node:
                self._preparing = node
                self._prepare(node)
            return
        self.query_one(DecisionTreeWidget).show(view)
        current = view.current()
        title.update(self._title(view, current))
        evidence.question = current
        if current.is_leaf:
            evidence.probe = None
        else:
            known = view.probed(current.id)
            if known is None:
                if self._probing != (view.node_name, current.id):
                    self._probing = (view.node_name, current.id)
                    self._probe(view, current.id)
                self._start_spinner()
                evidence.probe = self._probing_answer()
            else:
                evidence.probe = known
        steps = view.path()
        path_lines = [line("[b]Path so far[/b]")] if steps else [line("[dim]no answer yet[/dim]")]
        for step in steps:
            mark = (
                "✎ override" if step.overridden else ("✔ accepted" if step.probe.answer is not None else "✔ answered")
            )
            path_lines.append(
                line(
                    "$mark $question [b]$answer[/b]",
                    mark=mark,
                    question=step.question,
                    answer="yes" if step.answer else "no",
                )
            )
        self.query_one("#triage-path", Static).update(Content("\n").join(path_lines))
        recommended.clear_options()
        options = view.recommended()
        recommended.display = bool(options)
        for recommendation in options:
            danger = " ⚠ destructive" if recommendation.destructive else ""
            recommended.add_option(
                Option(
                    f"▶ {recommendation.playbook_id}: {recommendation.title} ({recommendation.severity}){danger}",
                    id=recommendation.playbook_id,
                )
            )
        if options:
            recommended.highlighted = 0
            recommended.focus()

    @staticmethod
    def _title(view: TriageView, current: TreeNode) -> Content:
        """The node, and once a leaf is reached the conclusion: severity and fault kind, or no fault."""
        if not current.is_leaf:
            return line("Triage of [b]$node[/b]", node=view.node_name)
        fault = getattr(view, "fault", lambda: None)()
        if fault is None:
            return line("Triage of [b]$node[/b] · ✔ no fault found", node=view.node_name)
        severity = getattr(view, "severity", lambda: None)() or "?"
        run_on = getattr(view, "run_on", lambda: view.node_name)()
        on = "" if run_on == view.node_name else f" · run on {run_on}"
        return line(
            "Triage of [b]$node[/b] · ✖ [b]$severity[/b] $fault$on",
            node=view.node_name,
            severity=severity,
            fault=fault,
            on=on,
        )

    # ------------------------------------------------------------------ answers
    def _loading(self) -> bool:
        if self.console.selected_node is not None and self.view() is None:
            self.notify("the decision tree is still loading", severity="warning")
            return True
        return False

    def action_accept(self) -> None:
        view = self.view()
        if self._loading() or view is None or view.current().is_leaf:
            return
        probe = view.probed(view.current().id)
        if probe is None:
            self.notify("still probing: wait for the evidence, or answer y or n yourself", severity="warning")
            return
        if probe.answer is None:
            # Cannot tell is an answer of its own: nothing is assumed, the responder decides.
            self.notify(
                "the probe cannot tell (see the evidence): answer y or n from what you know", severity="warning"
            )
            return
        self.action_answer(probe.answer)

    def action_answer(self, answer: bool) -> None:
        view = self.view()
        if self._loading() or view is None or view.current().is_leaf:
            return
        step = view.answer(answer)
        self.console.triage_answered(view, step)
        self._show()

    def action_undo(self) -> None:
        view = self.view()
        if view is None:
            return
        step = view.undo()
        if step is not None:
            self.console.triage_undone(view, step)
        self._show()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        view = self.view()
        if view is None:
            return
        for recommendation in view.recommended():
            if recommendation.playbook_id == event.option.id:
                # The node the diagnosis names (a down primary, a hung member), which may not be this one.
                self.console.choose_playbook(recommendation, getattr(view, "run_on", lambda: view.node_name)())
                return
