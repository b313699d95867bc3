"""What a session runs for each role, and the environment its console process gets.

The console process gets a short allow-list of the server's environment, never all of it: a
server started with a proxy's credentials, a node's admin token or a cloud key in its environment
must not hand them to every console it starts (a responder's console runs playbooks; a crash
report or a subprocess of it could show them). ``DRCONSOLE_ROLE`` tells the console its role;
``console.tui.launch.build_app`` makes a viewer the read-only dashboard whatever the argv.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

__all__ = ["ROLE_ENV", "base_environment", "console_args", "console_argv", "console_environment", "safe_term"]

ROLE_ENV = "DRCONSOLE_ROLE"
# What a console needs of the server's environment: where things are, language, time zone, state dirs.
_KEPT = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "DRCONSOLE_STATE_DIR",
    "XDG_STATE_HOME",
    "XDG_DATA_HOME",
    "XDG_CONFIG_HOME",
    "DRCONSOLE_AUDIT_KEY",
    "DRCONSOLE_AUDIT_SYSLOG",
)  # paths, not secrets: one audit key per host
_TERM = re.compile(r"^[A-Za-z0-9._+-]{1,64}$")


def console_args(role: str, config: Path | None) -> list[str]:
    """``drconsole`` arguments for ``role``: ``tui`` for a responder, ``dashboard`` for a viewer."""
    args = ["dashboard" if role == "viewer" else "tui"]
    if config is not None:
        args += ["--config", str(config)]
    return args


def console_argv(role: str, config: Path | None) -> list[str]:
    """The whole command line of ``role``'s console, with this interpreter."""
    return [sys.executable, "-m", "console", *console_args(role, config)]


def safe_term(term: str | None) -> str:
    """The client's TERM if it looks like a terminal name (it goes into an environment), else xterm-256color."""
    return term if term and _TERM.match(term) else "xterm-256color"


def base_environment() -> dict[str, str]:
    """The allow-listed part of this process's environment (also all the zygote ever gets)."""
    return {name: os.environ[name] for name in _KEPT if name in os.environ}


def console_environment(
    role: str, *, user: str, client: str = "", term: str | None = None, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of one console process.

    ``USER``/``LOGNAME`` are the session's user and ``SSH_CLIENT`` its address, so that what the
    console audits (playbooks.state.current_actor) names the person, not the server's account.
    """
    env = base_environment()
    env.update({ROLE_ENV: role, "USER": user, "LOGNAME": user})
    if client:
        env["SSH_CLIENT"] = client
    if term is not None:
        env["TERM"] = safe_term(term)
    env.update(extra or {})
    return env
