"""The run's log: every log line of the run as it arrives, wrapped to the pane and re-wrapped on resize."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.events import Resize
from textual.widgets import RichLog

from console.adapters.run_state import LogLine

__all__ = ["RunLog"]

_STYLE = {"warning": ("⚠ ", "bold yellow"), "error": ("✖ ", "bold red")}


class RunLog(RichLog):
    """``show(lines)`` appends what is new; a new run (fewer lines) or a new width writes them all again."""

    def __init__(self, **options: object) -> None:
        super().__init__(wrap=True, markup=False, max_lines=5000, min_width=20, **options)  # type: ignore[arg-type]
        self._lines: Sequence[LogLine] = ()
        self._written = 0
        self._width = 0

    def show(self, lines: Sequence[LogLine]) -> None:
        if len(lines) < self._written:
            self.clear()
            self._written = 0
        self._lines = lines
        for entry in lines[self._written :]:
            self.write(self._text(entry))
        self._written = len(lines)

    @staticmethod
    def _text(entry: LogLine) -> Text:
        prefix, style = _STYLE.get(entry.level, ("", ""))
        return Text(prefix + entry.text, style=style)

    def on_resize(self, event: Resize) -> None:
        # RichLog wraps a line once, when written: after a resize the old lines keep the old width.
        if event.size.width != self._width:
            self._width = event.size.width
            self.clear()
            self._written = 0
            self.call_after_refresh(self.show, self._lines)

    def write(
        self,
        content: object,
        width: int | None = None,
        expand: bool = False,
        shrink: bool = True,
        scroll_end: bool | None = None,
        animate: bool = False,
    ) -> RunLog:
        # Wrapped to the pane as it is now (its size less border, padding and scrollbar), not to the
        # width the log had before a resize: RichLog measures the content region, which lags one
        # layout behind. Wider than the content region, a line was cut at the right edge.
        if width is None and self._width:
            room = self._width - self.styles.gutter.width - self.styles.scrollbar_size_vertical
            width = max(self.min_width, room)
        super().write(content, width=width, expand=expand, shrink=shrink, scroll_end=scroll_end, animate=animate)
        return self
