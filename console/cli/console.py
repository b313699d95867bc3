"""``drconsole`` with no command, ``tui`` and ``dashboard``: open the console on the configured fleet.

Textual is imported only here, and only when the console opens, so no headless command pays for
it. ``drconsole --json`` with no command prints the fleet table of ``drconsole status --json``: a
script gets one JSON object, never a full-screen app.
"""

from __future__ import annotations

import argparse

from console.cli.output import Output
from console.config_lookup import resolve_config

__all__ = ["run_console"]


def run_console(args: argparse.Namespace, out: Output) -> int:
    if out.json_mode:
        from console.cli.fleet_status import run_status

        return run_status(args, out)
    from console.tui.launch import run_app

    config, _source = resolve_config(getattr(args, "config", None))
    dashboard = args.command == "dashboard"
    return run_app(
        "dashboard" if dashboard else "interactive",
        getattr(args, "theme", None),
        dashboard or bool(getattr(args, "read_only", False)),
        config,
    )
