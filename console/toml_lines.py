"""Where a value sits in a TOML file: the line of a pydantic error location, for messages that say where.

``tomllib`` gives values, not positions; this reads the file's lines once and maps every table
header and key to its line, which is what a "file:line: field: problem" message needs.
"""

from __future__ import annotations

import re

__all__ = ["field_name", "locate"]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\".]+)\s*=")


def locate(text: str, loc: tuple[str | int, ...]) -> int | None:
    """The 1-based line of ``loc`` (a pydantic error location) in TOML ``text``, or the nearest enclosing line."""
    lines: dict[tuple[str | int, ...], int] = {}
    arrays: dict[tuple[str, ...], int] = {}
    table: tuple[str | int, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        header = _HEADER.match(line)
        if header:
            names = tuple(part.strip().strip('"') for part in header.group(2).split("."))
            if header.group(1) == "[[":
                index = arrays.get(names, -1) + 1
                arrays[names] = index
                table = (*names, index)
            else:
                table = names
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            parts = tuple(part.strip('"') for part in key.group(1).split("."))
            lines.setdefault((*table, *parts), number)
    for length in range(len(loc), 0, -1):
        if loc[:length] in lines:
            return lines[loc[:length]]
    return None


def field_name(loc: tuple[str | int, ...]) -> str:
    """A pydantic location as a reader writes it: ``node[1].engine``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(file)"
