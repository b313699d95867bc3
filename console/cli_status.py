"""``drconsole`` with no command (or ``tui``, ``dashboard``): open the console, or say where things stand.

The Textual app lives in ``console.app``; it is imported only here and only when it exists, so no
headless command ever pays for Textual. Its entry point is
``console.app.run(*, config: Path | None, read_only: bool, theme: str | None, dashboard: bool) -> int``.
Until it exists, this prints a short status: which configuration would be used, which backends
are installed, and the headless commands.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
from pathlib import Path
from typing import Any

from console.cli_common import BACKENDS
from console.cli_output import EXIT_OK, Output

__all__ = ["run_status", "resolve_config"]

COMMANDS = """\
  drconsole engine init --engine {cow,lsm,rocksdb} --data-dir D [--durability sync|async]
  drconsole engine put|get|delete --data-dir D KEY [VALUE]
  drconsole engine import --data-dir D --input F.jsonl
  drconsole engine export --data-dir D --output F.jsonl
  drconsole engine stats|verify --data-dir D [--json]
  drconsole engine flush|compact|repair --data-dir D [--yes]
  drconsole wal validate --data-dir D [--json]
  drconsole wal truncate --data-dir D --yes"""


def resolve_config(explicit: Path | None) -> tuple[Path | None, str]:
    """The configuration file to use and where it came from (DESIGN.md, CLI contract)."""
    if explicit is not None:
        return explicit, "--config"
    for candidate, source in ((Path("drconsole.toml").absolute(), "./drconsole.toml"),
                              (Path.home() / ".config" / "drconsole" / "drconsole.toml", "user config")):
        if candidate.is_file():
            return candidate, source
    return None, "demo workspace"


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def run_status(args: argparse.Namespace, out: Output) -> int:
    config, source = resolve_config(getattr(args, "config", None))
    dashboard = args.command == "dashboard"
    if _module_exists("console.app") and not out.json_mode:
        app: Any = importlib.import_module("console.app")
        code: int = app.run(config=config, read_only=dashboard or bool(getattr(args, "read_only", False)),
                            theme=getattr(args, "theme", None), dashboard=dashboard)
        return code
    backends = {name: _module_exists(f"engines.{name}.engine") for name in BACKENDS}
    installed = ", ".join(name for name, present in backends.items() if present) or "none"
    text = "\n".join([
        "drconsole: disaster-recovery console",
        f"config: {config if config is not None else 'none'} ({source})",
        f"backends installed: {installed}",
        "the interactive console is not available in this build; the headless commands are:",
        COMMANDS,
        "run `drconsole COMMAND --help` for details",
    ])
    out.result({"config": None if config is None else str(config), "config_source": source,
                "backends": backends, "app": False}, text)
    return EXIT_OK
