"""The dashboard's first frame as HTML, so the web page's first paint is the fleet, not a splash.

textual-serve's page shows a splash until its websocket has started a dashboard process and that
process has drawn: a browser that screenshots on load (a wall screen's kiosk, ``chromium
--headless --screenshot``, a monitoring probe) sees only the splash. ``drconsole serve web``
therefore renders one frame before answering the page: ``python -m console.cli.servers.first_frame
CONFIG COLUMNSxROWS`` runs the same read-only dashboard headless, with the viewer's environment
(console.cli.servers.roles: no secret of the server's reaches it), waits for the fleet's first snapshot
and prints the screen as HTML (Rich's export: spans with inline colours, text that is text). The
page shows it at once and hides it when the live terminal's first bytes arrive.

``FirstFrames`` is the server's side: one render at a time, the last one reused for a few seconds
(ten wall screens reloading at once start one dashboard, not ten), and no frame at all (the
splash, as before) when the render fails or takes too long.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from console.cli.servers.roles import console_environment

if TYPE_CHECKING:
    from console.tui.app import DrConsoleApp

__all__ = ["DEFAULT_SIZE", "FirstFrames", "Size", "frame_html", "parse_size"]

log = logging.getLogger("drconsole.serve.web")

RENDER_TIMEOUT_SECONDS = 20.0  # a render slower than this: the page is served with its splash
SNAPSHOT_WAIT_SECONDS = 10.0  # the fleet's first snapshot (a node that never answers times out in the source)
FRESH_SECONDS = 3.0  # a frame this recent is served again instead of rendering another


@dataclass(frozen=True)
class Size:
    columns: int
    rows: int

    def __str__(self) -> str:
        return f"{self.columns}x{self.rows}"


DEFAULT_SIZE = Size(120, 40)
_LIMITS = ((40, 400), (12, 200))


def parse_size(text: str | None) -> Size:
    """``COLUMNSxROWS`` within sane bounds, else the default (a query parameter: never an error page)."""
    try:
        columns, rows = (int(part) for part in (text or "").lower().split("x"))
    except ValueError:
        return DEFAULT_SIZE
    (low_c, high_c), (low_r, high_r) = _LIMITS
    if not (low_c <= columns <= high_c and low_r <= rows <= high_r):
        return DEFAULT_SIZE
    return Size(columns, rows)


def frame_html(app: DrConsoleApp) -> str:
    """The app's current screen as HTML: one ``div`` per row (a fixed height: a glyph from a fallback
    font cannot make its row taller), spans with inline colours."""
    from rich.console import Console

    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    console.print(app.screen._compositor.render_update(full=True))
    rows = console.export_html(inline_styles=True, code_format="{code}").split("\n")
    return "".join(f'<div class="row">{row}</div>' for row in rows[:height])


async def _render(config_path: Path, size: Size) -> str:
    from textual.pilot import Pilot

    from console.config import load_config
    from console.tui.launch import build_app

    app = build_app(mode="dashboard", theme=None, read_only=True, config=load_config(config_path), watch_terminal=False)
    frame: list[str] = []

    async def first_frame(pilot: Pilot[object]) -> None:
        deadline = time.monotonic() + SNAPSHOT_WAIT_SECONDS
        while app.snapshot is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        if app.snapshot is not None:
            frame.append(frame_html(app))
        app.exit(0)

    await app.run_async(headless=True, size=(size.columns, size.rows), auto_pilot=first_frame)
    return frame[0] if frame else ""


def main(argv: list[str]) -> int:
    """``CONFIG COLUMNSxROWS``: the frame on stdout; exit 1 (nothing printed) without a snapshot."""
    html = asyncio.run(_render(Path(argv[0]), parse_size(argv[1])))
    if not html:
        return 1
    sys.stdout.write(html)
    return 0


class FirstFrames:
    """The server's renders: one at a time, a recent one reused, none on failure."""

    def __init__(self, config: Path | None) -> None:
        self.config = config
        self._lock = asyncio.Lock()
        self._last: tuple[Size, float, str] | None = None

    async def get(self, size: Size) -> str:
        """The frame's HTML, or "" (no config: the demo workspace is not started for a page view)."""
        if self.config is None:
            return ""
        async with self._lock:
            if self._last is not None:
                last_size, at, html = self._last
                if last_size == size and time.monotonic() - at < FRESH_SECONDS:
                    return html
            html = await self._run(size)
            self._last = (size, time.monotonic(), html)
            return html

    async def _run(self, size: Size) -> str:
        assert self.config is not None
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "console.cli.servers.first_frame",
            str(self.config),
            str(size),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=console_environment("viewer", user="web"),
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), RENDER_TIMEOUT_SECONDS)
        except TimeoutError:
            log.warning("first frame: no render within %.0f s, the page shows its splash", RENDER_TIMEOUT_SECONDS)
            return ""
        finally:  # timed out, or the request was cancelled: the render does not outlive it
            if process.returncode is None:
                process.kill()
                await process.wait()
        if process.returncode != 0:
            log.warning("first frame: render failed (exit %s): %s", process.returncode, err.decode()[-300:].strip())
            return ""
        return out.decode("utf-8", "replace")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
