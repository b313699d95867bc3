"""Which configuration file a command uses: the one lookup order of the CLI contract.

    1. ``--config PATH``
    2. ``$DRCONSOLE_CONFIG``
    3. ``./drconsole.toml``
    4. ``$XDG_CONFIG_HOME/drconsole/drconsole.toml`` (``XDG_CONFIG_HOME`` defaults to ``~/.config``)
    5. none: the console opens the demo workspace; commands that need nodes say so

An explicit choice (1 or 2) that names no file is an error, not a reason to fall through: a
responder who pointed at a config must not silently get another fleet. Standard library only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

__all__ = [
    "resolve_config",
    "check_explicit_config",
    "ConfigLookupError",
    "ENV_VAR",
    "DEMO_MARKER",
    "demo_workspace_path",
    "use_demo_state",
    "DEMO_NODES",
    "demo_node_urls",
]

ENV_VAR = "DRCONSOLE_CONFIG"
DEMO_MARKER = "drconsole-demo.json"  # what makes a folder a demo workspace (console.tui.demo)
STATE_VAR = "DRCONSOLE_STATE_DIR"
# Where a running demo console lists its node processes (name -> url, pid): its config has no url,
# the ports being chosen at each start (console.tui.demo.DemoFleet writes it, removes it on stop).
DEMO_NODES = "drconsole-demo-nodes.json"


class ConfigLookupError(ValueError):
    """An explicitly named config is not a readable file; ``hint`` says what to do."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def _user_config(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec: a relative value is invalid and must be ignored.
    root = Path(base) if base and Path(base).is_absolute() else Path(environ.get("HOME") or Path.home()) / ".config"
    return root / "drconsole" / "drconsole.toml"


def demo_workspace_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the embedded demo workspace lives: ``$XDG_DATA_HOME/drconsole/demo`` (~/.local/share)."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_DATA_HOME", "")
    root = (
        Path(base)
        if base and Path(base).is_absolute()
        else Path(environ.get("HOME") or Path.home()) / ".local" / "share"
    )
    return root / "drconsole" / "demo"


def use_demo_state(workspace: Path, environ: MutableMapping[str, str] | None = None) -> None:
    """Work on the demo workspace keeps its incidents, run journals and audit log in its ``state/``.

    Unless ``$DRCONSOLE_STATE_DIR`` names one already. The state dir is otherwise the user's, shared
    by every fleet they work on: the demo's nodes are called orders, ledger and cache, as real nodes
    may be, and a healthy demo must not show (nor leave behind) a real fleet's incidents. The node
    processes the demo starts inherit the environment, so they keep theirs there too.
    """
    environ = os.environ if environ is None else environ
    if not environ.get(STATE_VAR) and (workspace / DEMO_MARKER).is_file():
        environ[STATE_VAR] = str(workspace.absolute() / "state")


def demo_node_urls(workspace: Path) -> dict[str, str]:
    """The URLs of the demo nodes serving now, by name: empty when ``workspace`` is no running demo.

    So that a console, ``status`` or ``playbook run ... --node orders`` given ``--config
    <demo>/drconsole.toml`` reads and acts on the running node through its API, as on a real fleet,
    instead of reading (or being refused) its locked data dir (console.config.load_config applies it).
    An entry counts only while its process lives and is that node's ``node serve`` (a demo killed
    without its cleanup leaves the file; its pids may since belong to anything).
    """
    if not (workspace / DEMO_MARKER).is_file():
        return {}
    try:
        listed = json.loads((workspace / DEMO_NODES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    urls: dict[str, str] = {}
    for name, entry in (listed if isinstance(listed, dict) else {}).items():
        try:
            url, pid = str(entry["url"]), int(entry["pid"])
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (KeyError, TypeError, ValueError, OSError):
            continue
        if b"serve" in arguments and name.encode() in arguments:
            urls[str(name)] = url
    return urls


def check_explicit_config(path: Path, source: str) -> None:
    """Raise ``ConfigLookupError`` unless ``path`` (from ``source``) is a file."""
    if path.is_dir():
        raise ConfigLookupError(
            f"{source} {path} is a directory, not a config file", hint=f"name the file, e.g. {path / 'drconsole.toml'}"
        )
    if not path.is_file():
        raise ConfigLookupError(
            f"{source} {path} does not exist",
            hint="check the path, or unset it to use the default search (see `drconsole --help`)",
        )


def resolve_config(
    explicit: Path | None = None, *, environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> tuple[Path | None, str]:
    """(the config file, where it came from); (None, "demo workspace") when there is none."""
    environ = os.environ if environ is None else environ
    if explicit is not None:
        path = Path(explicit).absolute()
        check_explicit_config(path, "--config")
        return path, "--config"
    named = environ.get(ENV_VAR, "")
    if named:
        path = Path(named).absolute()
        check_explicit_config(path, f"${ENV_VAR}")
        return path, f"${ENV_VAR}"
    local = (cwd or Path.cwd()) / "drconsole.toml"
    if local.is_file():
        return local, "./drconsole.toml"
    user = _user_config(environ)
    if user.is_file():
        return user, "user config"
    return None, "demo workspace"
