"""The current question, what the probe answered and on what evidence."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from console.adapters.triage_view import ProbeAnswer, TreeNode
from console.tui.widgets.text import line

__all__ = ["EvidencePanel"]


class EvidencePanel(Widget):
    """Shows ``question`` with ``probe``; the screen's keys answer it. No bindings of its own."""

    question: reactive[TreeNode | None] = reactive(None, layout=True)
    probe: reactive[ProbeAnswer | None] = reactive(None, layout=True)
    note: reactive[str] = reactive("", layout=True)

    def render(self) -> Content:
        node = self.question
        if node is None:
            return line("[dim]no node selected: pick one on the Overview (1) and press enter[/dim]")
        if node.is_leaf:
            lines = [line("[b]Conclusion:[/b] $text", text=node.conclusion or node.id)]
            if node.recommend:
                lines.append(line("Recommended: [b]$ids[/b] (enter: open in Run)", ids=", ".join(node.recommend)))
            else:
                lines.append(line("No playbook needed. [dim]u: undo the last answer[/dim]"))
        else:
            lines = [line("[b]$question[/b]", question=node.question or "")]
            probe = self.probe
            if probe is None or probe.answer is None:
                lines.append(line("probe: [$status-unknown]? no answer[/]"))
                lines.append(line("[dim]evidence:[/dim] $evidence", evidence=probe.evidence if probe else "none"))
                lines.append(line("[dim]y: yes · n: no[/dim]"))
            else:
                verdict = "[b $status-warn]YES[/]" if probe.answer else "[b $status-ok]NO[/]"
                lines.append(line(f"probe says {verdict}"))
                lines.append(line("[dim]evidence:[/dim] $evidence", evidence=probe.evidence))
                lines.append(line("[dim]a: accept · y/n: answer yourself (override) · u: undo[/dim]"))
        if self.note:
            lines.append(line("[dim]$note[/dim]", note=self.note))
        return Content("\n").join(lines)
