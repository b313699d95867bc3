"""The decision tree drawn as a tree: the path taken marked, the current question highlighted.

Questions are long ("Is there a fleet to look at (nodes configured or found)?") and the pane is
narrow at 80 columns, so every label wraps under itself (a hanging indent) instead of being cut;
the pane scrolls, and keeps the current question in view.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from console.adapters.triage_view import TreeNode, TriageView
from console.tui.widgets.text import line

__all__ = ["DecisionTreeWidget", "TreeEntry", "tree_entries"]


@dataclass(frozen=True)
class TreeEntry:
    depth: int
    text: str
    style: str  # "answered" | "current" | "other" | "playbook"
    node_id: str


def tree_entries(view: TriageView) -> list[TreeEntry]:
    """The walk as rows, depth first: answered questions, the current one, the branches not taken (folded)."""
    nodes = view.nodes()
    answers = {step.node_id: step for step in view.path()}
    current = view.current().id
    entries: list[TreeEntry] = []

    def label(node: TreeNode, branch: str) -> tuple[str, str]:
        prefix = f"{branch} " if branch else ""
        text = node.question or node.conclusion or node.id
        if node.id in answers:
            step = answers[node.id]
            mark = "✎" if step.overridden else "✔"
            return f"{prefix}{mark} {text} = {'yes' if step.answer else 'no'}", "answered"
        if node.id == current:
            return f"{prefix}● {text}", "current"
        return f"{prefix}· {text}", "other"

    def add(node_id: str, branch: str, depth: int, seen: frozenset[str], on_path: bool) -> None:
        # The tree is a graph (two questions may lead to one): only the branch actually taken is the
        # path; a question reached another way is shown once, folded and unmarked.
        node = nodes[node_id]
        if on_path:
            text, style = label(node, branch)
        else:
            text, style = f"{branch} · {node.question or node.conclusion}", "other"
        entries.append(TreeEntry(depth, text, style, node_id))
        if not on_path or depth > 24 or node_id in seen:
            return
        step = answers.get(node_id)
        for answer, target in (("yes", node.yes), ("no", node.no)):
            if target is not None:
                taken = step is not None and step.answer == (answer == "yes")
                add(target, f"{answer}:", depth + 1, seen | {node_id}, taken)
        if node.is_leaf and node.recommend:
            for playbook in node.recommend:
                entries.append(TreeEntry(depth + 1, f"→ playbook {playbook}", "playbook", f"playbook:{playbook}"))

    add(view.root, "", 0, frozenset(), True)
    return entries


_STYLE = {"answered": "", "current": "b", "other": "dim", "playbook": ""}


class _TreeLines(Widget):
    """The rows, wrapped to the pane's width; ``current_row`` is where the current question starts."""

    DEFAULT_CSS = """
    _TreeLines { height: auto; padding: 0 1; }
    """

    entries: reactive[tuple[TreeEntry, ...]] = reactive((), layout=True)

    def __init__(self) -> None:
        super().__init__()
        self.current_row = 0

    def render(self) -> Content:
        width = max(12, self.content_size.width or (self.size.width - 2))
        rows: list[Content] = []
        self.current_row = 0
        # Deep walks in a narrow pane: the indent stops growing once half the width is taken, so a
        # label always has room to wrap into (past that it was re-wrapped a few letters per row).
        deepest = max(0, (width - max(16, width // 2)) // 2)
        for entry in self.entries:
            indent = "  " * min(entry.depth, deepest)
            room = max(6, width - len(indent))
            wrapped = textwrap.wrap(entry.text, room, subsequent_indent="  ", break_long_words=True) or [""]
            if entry.style == "current":
                self.current_row = len(rows)
            style = _STYLE[entry.style]
            for part in wrapped:
                rows.append(line(f"[{style}]$text[/{style}]" if style else "$text", text=indent + part))
        return Content("\n").join(rows)


class DecisionTreeWidget(VerticalScroll):
    """Read-only view of the walk; answers are given with the screen's keys, not here.

    Bindings are VerticalScroll's own (up/down, page up/down, home/end) when it has the focus.
    """

    BINDINGS: ClassVar[list[BindingType]] = []
    """
    | Key(s) | Description |
    | :- | :- |
    | up/down, pgup/pgdn | Scroll the tree (VerticalScroll's bindings). |
    """

    def compose(self) -> ComposeResult:
        yield _TreeLines()

    def show(self, view: TriageView) -> None:
        """Redraw from ``view``: answered questions, the current one, and the untaken branches."""
        lines = self.query_one(_TreeLines)
        lines.entries = tuple(tree_entries(view))
        # After the refresh: the rows (and so where the current one is) exist only then.
        self.call_after_refresh(self._keep_current_in_view)

    def _keep_current_in_view(self) -> None:
        lines = self.query_one(_TreeLines)
        lines.render()  # the current row at the width it is drawn
        row = lines.current_row
        height = self.scrollable_content_region.height
        if not height:
            return
        if row < self.scroll_y or row >= self.scroll_y + height:
            self.scroll_to(y=max(0, row - height // 3), animate=False)

    def render_text(self) -> str:
        """The tree's text as drawn (for tests)."""
        return self.query_one(_TreeLines).render().plain
