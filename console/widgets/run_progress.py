"""Progress of the running step: a bar, n/total, bytes and ETA."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import ProgressBar, Static

from console.format import bytes_text, duration_text
from console.run_view import StepProgress
from console.widgets.text import line

__all__ = ["RunProgress"]


class RunProgress(Vertical):
    """Set ``progress`` (the latest ``StepProgress``) and ``label``. No bindings."""

    progress: reactive[StepProgress | None] = reactive(None)
    label: reactive[str] = reactive("")

    def compose(self) -> ComposeResult:
        yield Static(id="run-progress-label")
        yield ProgressBar(total=100, show_eta=False, id="run-progress-bar")

    def on_mount(self) -> None:
        self._show()

    def watch_progress(self) -> None:
        self._show()

    def watch_label(self) -> None:
        self._show()

    def _show(self) -> None:
        if not self.is_mounted:
            return
        bar = self.query_one(ProgressBar)
        text = self.query_one("#run-progress-label", Static)
        progress = self.progress
        if progress is None:
            bar.update(total=100, progress=0)  # not None: an indeterminate bar animates forever
            text.update(line("$label", label=self.label or "idle"))
            return
        bar.update(total=progress.total, progress=progress.done)
        figures = f"{progress.done}/{progress.total}"
        if progress.bytes_total is not None:
            figures += f" · {bytes_text(progress.bytes_done)} of {bytes_text(progress.bytes_total)}"
        if progress.eta_seconds is not None:
            figures += f" · ETA {duration_text(progress.eta_seconds)}"
        text.update(line("$label  [b]$figures[/b]", label=self.label or progress.step_id, figures=figures))
