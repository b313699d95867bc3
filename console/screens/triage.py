"""Triage: the decision tree, the current question with its evidence, accept or override, the path."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from console.screens.base import ConsoleScreen
from console.widgets.key_bar import KeyBar
from console.triage_stub import STAND_IN_NOTE
from console.triage_view import TriageView
from console.widgets.decision_tree import DecisionTree
from console.widgets.evidence_panel import EvidencePanel
from console.widgets.text import line

__all__ = ["TriageScreen"]


class TriageScreen(ConsoleScreen):
    """Answer each question from the evidence; every answer goes on the incident's timeline."""

    SCREEN_LABEL = "Triage"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "accept", "Accept"),
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("u", "undo", "Undo"),
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

    def compose(self) -> ComposeResult:
        yield self.status_bar()
        yield Static(id="triage-title")
        with Horizontal(id="triage-body"):
            yield DecisionTree(id="triage-tree")
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

    def _show_if_current(self) -> None:
        # Drawing the tree costs; a screen not shown is redrawn when it is shown again.
        if self.is_current:
            self._show()

    def view(self) -> TriageView | None:
        node = self.console.selected_node
        return self.console.triage(node) if node is not None else None

    def _show(self) -> None:
        view = self.view()
        title = self.query_one("#triage-title", Static)
        evidence = self.query_one(EvidencePanel)
        recommended = self.query_one("#triage-recommended", OptionList)
        if view is None:
            title.update(line("[dim]no node selected: pick one on the Overview (1)[/dim]"))
            evidence.question = None
            return
        stand_in = self.console.triage_stand_in
        title.update(line("Triage of [b]$node[/b]" + (" · [dim]$note[/dim]" if stand_in else ""),
                          node=view.node_name, note=STAND_IN_NOTE))
        self.query_one(DecisionTree).show(view)
        current = view.current()
        evidence.question = current
        evidence.probe = None if current.is_leaf else view.probe(current.id)
        steps = view.path()
        path_lines = [line("[b]Path so far[/b]")] if steps else [line("[dim]no answer yet[/dim]")]
        for step in steps:
            mark = "✎ override" if step.overridden else ("✔ accepted" if step.probe.answer is not None else "✔ answered")
            path_lines.append(line("$mark $question [b]$answer[/b]", mark=mark, question=step.question,
                                   answer="yes" if step.answer else "no"))
        self.query_one("#triage-path", Static).update(Content("\n").join(path_lines))
        recommended.clear_options()
        options = view.recommended()
        recommended.display = bool(options)
        for recommendation in options:
            danger = " ⚠ destructive" if recommendation.destructive else ""
            recommended.add_option(Option(f"▶ {recommendation.playbook_id}: {recommendation.title} "
                                          f"({recommendation.severity}){danger}", id=recommendation.playbook_id))
        if options:
            recommended.highlighted = 0
            recommended.focus()

    def action_accept(self) -> None:
        view = self.view()
        if view is None or view.current().is_leaf:
            return
        probe = view.probe(view.current().id)
        if probe.answer is None:
            self.notify("the probe has no answer here: answer y or n yourself", severity="warning")
            return
        self.action_answer(probe.answer)

    def action_answer(self, answer: bool) -> None:
        view = self.view()
        if view is None or view.current().is_leaf:
            return
        step = view.answer(answer)
        incident = self.console.ensure_incident(view.node_name)
        incident.triage_path.append((step.question, step.answer, step.probe.evidence, step.overridden))
        verdict = "yes" if step.answer else "no"
        if step.overridden:
            said = "yes" if step.probe.answer else "no"
            self.console.record("override", f"{step.question} {verdict} (probe said {said}: {step.probe.evidence})",
                                view.node_name)
        else:
            self.console.record("triage", f"{step.question} {verdict} ({step.probe.evidence})", view.node_name)
        leaf = view.current()
        if leaf.is_leaf:
            ids = ", ".join(leaf.recommend) or "none"
            incident.recommended = list(leaf.recommend)
            self.console.record("triage", f"recommended: {ids} ({leaf.conclusion})", view.node_name)
        self._show()

    def action_undo(self) -> None:
        view = self.view()
        if view is None:
            return
        step = view.undo()
        if step is not None:
            incident = self.console.ensure_incident(view.node_name)
            if incident.triage_path:
                incident.triage_path.pop()
            self.console.record("triage", f"undid the answer to {step.question}", view.node_name)
        self._show()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        view = self.view()
        if view is None:
            return
        for recommendation in view.recommended():
            if recommendation.playbook_id == event.option.id:
                self.console.choose_playbook(recommendation, view.node_name)
                return
