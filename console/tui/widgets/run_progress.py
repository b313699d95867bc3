"""Progress of the whole run: a bar that moves with steps and with the running step's bytes, and ETA."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import ProgressBar, Static

from console.tui.widgets.text import line

__all__ = ["RunProgress"]


class RunProgress(Vertical):
    """Set ``fraction`` (0..1 of the run), ``label`` (the step) and ``figures`` (bytes, ETA). No bindings."""

    fraction: reactive[float] = reactive(0.0)
    label: reactive[str] = reactive("")
    figures: reactive[str] = reactive("")

    def compose(self) -> ComposeResult:
        yield Static(id="run-progress-label")
        yield ProgressBar(total=1000, show_eta=False, id="run-progress-bar")

    def on_mount(self) -> None:
        self._show()

    def watch_fraction(self) -> None:
        self._show()

    def watch_label(self) -> None:
        self._show()

    def watch_figures(self) -> None:
        self._show()

    def _show(self) -> None:
        if not self.is_mounted:
            return
        # Never total=None: an indeterminate bar animates forever (a repaint per frame over SSH).
        self.query_one(ProgressBar).update(total=1000, progress=round(1000 * max(0.0, min(1.0, self.fraction))))
        text = self.query_one("#run-progress-label", Static)
        if self.figures:
            text.update(line("$label  [b]$figures[/b]", label=self.label or "idle", figures=self.figures))
        else:
            text.update(line("$label", label=self.label or "idle"))
