"""Finding the line of a field in TOML text, so a load error names file, line and field.

``tomllib`` returns plain dicts without positions, so the line is found in the text: the table
headers are indexed (``[a.b]``, and ``[[steps]]`` counted per array), the longest prefix of the
field's path that names a table picks the block, and the key is searched inside that block. A
field that is missing points at its table's header (a missing top-level one at the file's top).
A dotted key (``a.b = 1``) is found as the path it spells. The one locator for every TOML file
drconsole reads: playbooks, the decision tree,
the console's config, themes and users file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["locate", "format_field", "field_name"]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def _split_key(dotted: str) -> tuple[str, ...]:
    parts = []
    for part in re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', dotted):
        parts.append(part.strip().strip("\"'"))
    return tuple(parts)


def _sections(lines: list[str]) -> list[tuple[tuple[str | int, ...], int, int]]:
    """(path, first line index, end line index) of every table; array tables get their index."""
    headers: list[tuple[tuple[str | int, ...], int]] = [((), 0)]
    counts: dict[tuple[str, ...], int] = {}
    for number, line in enumerate(lines):
        match = _HEADER.match(line)
        if not match:
            continue
        key = _split_key(match.group(2))
        if match.group(1) == "[[":
            index = counts.get(key, 0)
            counts[key] = index + 1
            headers.append(((*key, index), number))
        else:
            # A sub-table of the newest array element: [steps.args] after [[steps]].
            parent = key[:-1]
            if parent in counts:
                headers.append(((*parent, counts[parent] - 1, key[-1]), number))
            else:
                headers.append((key, number))
    sections = []
    for position, (path, start) in enumerate(headers):
        end = headers[position + 1][1] if position + 1 < len(headers) else len(lines)
        sections.append((path, start, end))
    return sections


def locate(text: str, location: Sequence[str | int]) -> int | None:
    """The 1-based line of ``location`` (a pydantic ``loc``) in ``text``, or None."""
    lines = text.splitlines()
    location = tuple(location)
    best: tuple[tuple[str | int, ...], int, int] | None = None
    for path, start, end in _sections(lines):
        if len(path) <= len(location) and location[: len(path)] == path:
            if best is None or len(path) > len(best[0]):
                best = (path, start, end)
    if best is None:
        return None
    path, start, end = best
    rest = location[len(path) :]
    keys = [part for part in rest if isinstance(part, str)]
    # Search the first key of the rest in the block, then deeper keys after it (inline tables).
    line = None
    cursor = start + (1 if path else 0)
    for key in keys:
        # The key, then "=" or "." (a dotted key's first part); before it a line start, space, "{", "," or "."
        # (a dotted key's later part).
        pattern = re.compile(r'(^|[\s{,.])("?' + re.escape(key) + r'"?)\s*[=.]')
        for number in range(cursor, end):
            if pattern.search(lines[number]):
                line = number
                cursor = number
                break
        else:
            break
    if line is None:
        return start + 1 if path else (1 if lines else None)
    return line + 1


def format_field(location: Sequence[str | int]) -> str:
    """``steps[2].on_failure`` for ``("steps", 2, "on_failure")``."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + part
    return text


def field_name(location: Sequence[str | int]) -> str:
    """``format_field`` for a reader: the whole file, when the location is empty, is ``(file)``."""
    return format_field(location) or "(file)"
