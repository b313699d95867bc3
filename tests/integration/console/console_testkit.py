"""Helpers of the console's tests: the fixed fleet, a frozen clock, an app built from them, screen text.

Imported as ``console_testkit`` (each console test folder's conftest puts this folder on sys.path).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from console.tui.app import DrConsoleApp
from console.tui.themes import load_theme
from fleet import FleetSnapshot, load_recording

__all__ = ["FIXTURE", "FROZEN", "fixture_ticks", "fixture_app", "screen_text", "tree_digest", "frozen_clock"]

FIXTURE = Path(__file__).resolve().parents[2] / "snapshots" / "fixtures" / "fleet.json"
FROZEN = datetime(2024, 5, 14, 12, 4, 9, tzinfo=UTC)


def frozen_clock() -> datetime:
    return FROZEN


def fixture_ticks() -> tuple[FleetSnapshot, ...]:
    return load_recording(FIXTURE)


def fixture_app(
    *,
    mode: str = "interactive",
    theme: str = "dark",
    read_only: bool = False,
    ticks: Sequence[FleetSnapshot] | None = None,
    **options: object,
) -> DrConsoleApp:
    """The console on the fixed fleet at 12:04:09 UTC, no refresh worker: the same picture every time."""
    return DrConsoleApp(
        mode=mode,
        read_only=read_only,
        theme=load_theme(theme),
        initial=fixture_ticks() if ticks is None else ticks,
        clock=frozen_clock,
        tz=UTC,
        refresh_seconds=None,
        **options,
    )  # type: ignore[arg-type]


def screen_text(app: DrConsoleApp) -> str:
    """What the terminal shows, as plain text (one line per row)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system=None,
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its size, mtime and content hash: equal digests, nothing changed."""
    digest = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() or path.is_symlink():
            stat = path.lstat()
            content = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else os.readlink(path)
            digest[str(path.relative_to(root))] = f"{stat.st_size}:{stat.st_mtime_ns}:{content}"
        elif path.is_dir():
            digest[str(path.relative_to(root)) + "/"] = f"{path.stat().st_mtime_ns}"
    return digest
