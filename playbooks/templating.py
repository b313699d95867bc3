"""``{name}`` placeholders in step arguments: run variables and parameters.

An argument that is exactly one placeholder keeps the value's type (``until_lsn = "{until_lsn}"``
stays an int, an unset parameter is ``None``); inside longer text the value is formatted in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["RUN_VARIABLES", "placeholders", "render", "render_args"]

# Set by the runner for every run; parameter names may not shadow them.
RUN_VARIABLES = ("data_dir", "quarantine", "run_dir", "run_id", "backend", "node", "state_dir", "playbook")
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def placeholders(value: Any) -> list[str]:
    """Every placeholder name used in ``value`` (strings, lists and tables, recursively)."""
    if isinstance(value, str):
        return _PLACEHOLDER.findall(value)
    if isinstance(value, Mapping):
        return [name for item in value.values() for name in placeholders(item)]
    if isinstance(value, (list, tuple)):
        return [name for item in value for name in placeholders(item)]
    return []


def render(value: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            return variables.get(whole.group(1))

        def substitute(match: re.Match[str]) -> str:
            found = variables.get(match.group(1))
            if found is None:
                raise KeyError(match.group(1))
            return str(found)

        return _PLACEHOLDER.sub(substitute, value)
    if isinstance(value, Mapping):
        return {key: render(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, variables) for item in value]
    return value


def render_args(args: Mapping[str, Any], variables: Mapping[str, Any]) -> dict[str, Any]:
    return {key: render(value, variables) for key, value in args.items()}
