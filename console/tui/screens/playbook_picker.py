"""Run playbook…: any playbook of the library, on any node, chosen by a responder who knows what to run.

Two steps in one dialog: type to filter the library (id, title, severity, backend) and pick a
playbook with up/down and enter; then pick the node (the selected one is highlighted; nodes whose
engine the playbook does not apply to are listed but cannot be picked). The dialog returns
``(playbook_id, node)``; the app prepares the run through ``choose`` exactly as for a recommended
playbook: the Run screen shows the dry-run plan first, ``s`` starts it, destructive steps ask for
the node's name, and the runner keeps the journal and the audit log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from console.tui.widgets.text import line

__all__ = ["PlaybookChoice", "PlaybookPicker", "matches", "relevance"]


@dataclass(frozen=True)
class PlaybookChoice:
    """One playbook as the picker lists it."""

    id: str
    title: str
    severity: str
    backends: tuple[str, ...]
    destructive: bool
    summary: str = ""

    @classmethod
    def of(cls, playbook: Any) -> PlaybookChoice:
        return cls(
            playbook.id,
            playbook.title,
            str(playbook.severity),
            tuple(playbook.backends),
            bool(playbook.destructive),
            str(getattr(playbook, "summary", "") or ""),
        )

    def haystack(self) -> str:
        return " ".join(
            (
                self.id,
                self.title,
                self.severity,
                *self.backends,
                self.summary,
                "destructive" if self.destructive else "",
            )
        ).lower()


def matches(choice: PlaybookChoice, text: str) -> bool:
    """Every word of ``text`` appears in the playbook's id, title, severity, backends or summary."""
    haystack = choice.haystack()
    return all(word in haystack for word in text.lower().split())


def relevance(choice: PlaybookChoice, text: str) -> int:
    """How closely ``text`` names the playbook: a word in its id counts most, then in its title
    ("recover lsm" puts recover-lsm before every playbook that merely runs on lsm)."""
    words = text.lower().split()
    return sum(2 * (word in choice.id) + (word in choice.title.lower()) for word in words)


class _Loaded(Message):
    def __init__(self, choices: Sequence[PlaybookChoice], error: str = "") -> None:
        super().__init__()
        self.choices = tuple(choices)
        self.error = error


class PlaybookPicker(ModalScreen[tuple[str, str] | None]):
    """Filter, pick a playbook, pick a node; escape goes back a step, then closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("down", "move(1)", "Next", show=False),
        Binding("up", "move(-1)", "Previous", show=False),
        Binding("pagedown", "move(8)", "Page down", show=False),
        Binding("pageup", "move(-8)", "Page up", show=False),
    ]
    """
    | Key(s) | Description |
    | :- | :- |
    | (type) | Filter the list: every word must appear in the id, title, severity or backends. |
    | up/down | Move in the list. |
    | enter | Pick the playbook, then the node. |
    | escape | Back to the playbooks, or close. |
    """

    def __init__(
        self,
        launcher: Any,
        nodes: Sequence[tuple[str, str | None]],
        selected: str | None,
        unreachable: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.launcher = launcher
        self.nodes = list(nodes)  # (name, engine)
        self.cannot = set(unreachable)  # listed, but the console has no way to act on them
        self.selected = selected
        self.choices: tuple[PlaybookChoice, ...] = ()
        self.picked: PlaybookChoice | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-dialog"):
            yield Static(id="picker-title")
            yield Input(placeholder="filter: id, title, severity, backend (e.g. lsm restore)", id="picker-filter")
            yield OptionList(id="picker-list")
            yield Static(
                line(
                    "[dim]↑↓ move · enter pick · escape back · the Run screen shows the dry-run plan "
                    "before anything starts[/dim]"
                ),
                id="picker-help",
            )

    def on_mount(self) -> None:
        self._title()
        self.query_one(Input).focus()
        self.query_one(OptionList).add_option(Option("loading the playbook library…", disabled=True))
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _load(self) -> None:
        try:
            library = self.launcher.library
            choices = [PlaybookChoice.of(playbook) for playbook in library.playbooks.values()]
        except Exception as exc:  # noqa: BLE001 - a broken library is said in the dialog
            self.post_message(_Loaded((), getattr(exc, "message", None) or str(exc)))
            return
        self.post_message(_Loaded(sorted(choices, key=lambda choice: choice.id)))

    def on__loaded(self, message: _Loaded) -> None:
        self.choices = message.choices
        if message.error:
            options = self.query_one(OptionList)
            options.clear_options()
            options.add_option(Option(f"✖ the library cannot be loaded: {message.error}", disabled=True))
            return
        self._fill()

    # ------------------------------------------------------------------ the two steps
    def _title(self) -> None:
        if self.picked is None:
            text = line(
                "[b]Run playbook…[/b] pick one of the library · [dim]node: $node[/dim]",
                node=self.selected or "pick it next",
            )
        else:
            text = line("[b]Run $id[/b] · $title · pick the node", id=self.picked.id, title=self.picked.title)
        self.query_one("#picker-title", Static).update(text)

    def _engine(self, node: str | None) -> str | None:
        return next((engine for name, engine in self.nodes if name == node), None)

    def _fill(self) -> None:
        options = self.query_one(OptionList)
        text = self.query_one(Input).value
        options.clear_options()
        if self.picked is None:
            engine = self._engine(self.selected)
            shown = [choice for choice in self.choices if matches(choice, text)]
            # The closest to what was typed first, then what applies to the selected node; the rest
            # stays visible, marked.
            shown.sort(
                key=lambda choice: (-relevance(choice, text), engine is not None and engine not in choice.backends)
            )
            for choice in shown:
                danger = " ⚠ destructive" if choice.destructive else ""
                fits = engine is None or engine in choice.backends
                note = "" if fits else f" (not for {engine})"
                options.add_option(
                    Option(
                        f"{choice.id:<24} {choice.severity}{danger}{note}\n"
                        f"  {choice.title} · {', '.join(choice.backends)}",
                        id=choice.id,
                    )
                )
            if not shown:
                options.add_option(Option(f"no playbook matches {text!r}", disabled=True))
        else:
            words = text.lower().split()
            for name, engine in self.nodes:
                if not all(word in f"{name} {engine or ''}".lower() for word in words):
                    continue
                fits = engine is None or engine in self.picked.backends
                why = ("" if fits else f" (the playbook is for {', '.join(self.picked.backends)})") or (
                    " (no url or data_dir in the config: nothing can run on it)" if name in self.cannot else ""
                )
                options.add_option(
                    Option(f"{name} · {engine or 'engine unknown'}{why}", id=f"node:{name}", disabled=bool(why))
                )
            if not options.option_count:
                options.add_option(Option("no node matches", disabled=True))
        self._highlight_default()

    def _highlight_default(self) -> None:
        options = self.query_one(OptionList)
        wanted = f"node:{self.selected}" if self.picked is not None else None
        for index in range(options.option_count):
            option = options.get_option_at_index(index)
            if option.disabled:
                continue
            if wanted is None or option.id == wanted:
                options.highlighted = index
                return
        first = next(
            (index for index in range(options.option_count) if not options.get_option_at_index(index).disabled), None
        )
        options.highlighted = first

    def on_input_changed(self, event: Input.Changed) -> None:
        self._fill()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            self._pick(options.get_option_at_index(options.highlighted))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self._pick(event.option)

    def _pick(self, option: Option) -> None:
        if option.disabled or option.id is None:
            return
        if self.picked is None:
            self.picked = next(choice for choice in self.choices if choice.id == option.id)
            fitting = [
                name
                for name, engine in self.nodes
                if (engine is None or engine in self.picked.backends) and name not in self.cannot
            ]
            if len(fitting) == 1:
                self.dismiss((self.picked.id, fitting[0]))
                return
            self.query_one(Input).value = ""
            self.query_one(Input).placeholder = "filter the nodes"
            self._title()
            self._fill()
            return
        self.dismiss((self.picked.id, option.id.removeprefix("node:")))

    def action_move(self, step: int) -> None:
        options = self.query_one(OptionList)
        count = options.option_count
        if not count:
            return
        index = options.highlighted if options.highlighted is not None else -1
        for _ in range(count):
            index = max(0, min(count - 1, index + (1 if step > 0 else -1)))
            if not options.get_option_at_index(index).disabled:
                break
            if index in (0, count - 1):
                break
        if abs(step) > 1:
            index = max(0, min(count - 1, (options.highlighted or 0) + step))
        options.highlighted = index

    def action_back(self) -> None:
        if self.picked is None:
            self.dismiss(None)
            return
        self.picked = None
        self.query_one(Input).value = ""
        self.query_one(Input).placeholder = "filter: id, title, severity, backend (e.g. lsm restore)"
        self._title()
        self._fill()
