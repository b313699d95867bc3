"""``drconsole`` with no command, ``tui``, ``dashboard`` and ``demo``: open the console.

Textual is imported only here, and only when the console opens, so no headless command pays for
it. ``drconsole --json`` with no command prints the fleet table of ``drconsole status --json``: a
script gets one JSON object, never a full-screen app.
"""

from __future__ import annotations

import argparse
from typing import Any

from console.cli.common import absolute_path, add_command
from console.config_lookup import resolve_config
from console.output import Output

__all__ = ["register", "run_console", "run_demo"]


def register(subparsers: Any, common: argparse.ArgumentParser | None = None) -> None:
    """Add ``tui``, ``dashboard`` and ``demo`` to ``subparsers``; each opens the console."""
    tui = add_command(subparsers, "tui", "the interactive console (default)", run_console, common)
    tui.add_argument("--read-only", action="store_true")
    tui.add_argument("--theme", metavar="NAME")
    dashboard = add_command(subparsers, "dashboard", "read-only status board", run_console, common)
    dashboard.add_argument("--theme", metavar="NAME")
    demo = add_command(subparsers, "demo", "open the console on a demo fleet (made if needed)", run_demo, common)
    demo.add_argument(
        "--workspace",
        type=absolute_path,
        metavar="DIR",
        default=None,
        help="where the demo fleet lives (default: ~/.local/share/drconsole/demo)",
    )
    demo.add_argument("--theme", metavar="NAME")


def run_console(args: argparse.Namespace, out: Output) -> int:
    if out.json_mode:
        from console.cli.fleet_status import run_status

        return run_status(args, out)
    from console.tui.launch import run_app

    config, _source = resolve_config(getattr(args, "config", None))
    dashboard = getattr(args, "command", None) == "dashboard"
    return run_app(
        "dashboard" if dashboard else "interactive",
        getattr(args, "theme", None),
        dashboard or bool(getattr(args, "read_only", False)),
        config,
    )


def run_demo(args: argparse.Namespace, out: Output) -> int:
    from console.tui.demo import run_cli

    return run_cli(args, out)
