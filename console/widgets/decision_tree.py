"""The decision tree drawn as a tree: the path taken marked, the current question highlighted."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import BindingType
from textual.widgets import Tree
from textual.widgets.tree import TreeNode as UITreeNode

from console.triage_view import TriageView, TreeNode

__all__ = ["DecisionTreeWidget"]


class DecisionTreeWidget(Tree[str]):
    """Read-only view of the walk; answers are given with the screen's keys, not here.

    Bindings are Tree's own (cursor movement, expand/collapse).
    """

    BINDINGS: ClassVar[list[BindingType]] = []
    """
    | Key(s) | Description |
    | :- | :- |
    | up/down | Move the cursor (Tree's bindings). |
    | space | Expand or collapse a branch. |
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("decision tree", id=id)
        self.show_root = False
        self.guide_depth = 2

    def show(self, view: TriageView) -> None:
        """Redraw from ``view``: answered questions, the current one, and the untaken branches."""
        self.clear()
        nodes = view.nodes()
        answers = {step.node_id: step for step in view.path()}
        current = view.current().id

        def label(node: TreeNode, branch: str) -> Text:
            # Text, not str: a str label would be parsed as markup, and "[yes]" would vanish.
            prefix = f"{branch} " if branch else ""
            text = node.question or node.conclusion or node.id
            if node.id in answers:
                step = answers[node.id]
                mark = "✎" if step.overridden else "✔"
                return Text(f"{prefix}{mark} {text} = {'yes' if step.answer else 'no'}")
            if node.id == current:
                return Text(f"{prefix}● {text}", style="bold")
            return Text(f"{prefix}· {text}", style="dim")

        def add(parent: UITreeNode[str], node_id: str, branch: str, depth: int, seen: frozenset[str],
                on_path: bool) -> None:
            # The tree is a graph (two questions may lead to one): only the branch actually taken is
            # the path; the same question reached another way is shown folded and unmarked.
            node = nodes[node_id]
            item = parent.add(label(node, branch) if on_path else Text(f"{branch} · {node.question or node.conclusion}",
                                                                       style="dim"), data=node_id, expand=on_path)
            if depth > 24 or node_id in seen:
                return
            step = answers.get(node_id) if on_path else None
            for answer, target in (("yes", node.yes), ("no", node.no)):
                if target is not None:
                    taken = step is not None and step.answer == (answer == "yes")
                    add(item, target, f"{answer}:", depth + 1, seen | {node_id}, taken)
            if node.is_leaf and node.recommend:
                for playbook in node.recommend:
                    item.add_leaf(Text(f"→ playbook {playbook}"), data=f"playbook:{playbook}")
            if not on_path:
                item.collapse()

        add(self.root, view.root, "", 0, frozenset(), True)
        self.root.expand()
        # After the refresh: the tree's lines (and so the cursor's positions) exist only then.
        self.call_after_refresh(self._move_to, current)

    def _move_to(self, node_id: str) -> None:
        def find(node: UITreeNode[str]) -> UITreeNode[str] | None:
            if node.data == node_id and (node.parent is None or node.parent.is_expanded):
                return node
            for child in node.children:
                found = find(child)
                if found is not None:
                    return found
            return None

        target = find(self.root)
        if target is not None:
            self.move_cursor(target)
