"""SHA-256 sums in the format of GNU ``sha256sum``, so ``sha256sum -c SHA256SUMS`` checks them by hand.

A line is ``<64 hex digits>  <name>`` (two spaces: text mode, which is binary on every system we
support). A name holding a backslash or a newline is written as GNU coreutils does: the line
starts with a backslash and those characters are escaped.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from engines.errors import map_os_error

__all__ = ["SUMS_NAME", "CHUNK_BYTES", "format_sums", "parse_sums", "sha256_file", "prefixed"]

SUMS_NAME = "SHA256SUMS"
CHUNK_BYTES = 1 << 20
_LINE = re.compile(r"^(\\?)([0-9a-fA-F]{64}) [ *](.+)$")


def prefixed(hex_digest: str) -> str:
    """The metadata spelling of a digest: ``sha256:<hex>``."""
    return f"sha256:{hex_digest}"


def _escape(name: str) -> tuple[str, str]:
    if "\\" not in name and "\n" not in name:
        return "", name
    return "\\", name.replace("\\", "\\\\").replace("\n", "\\n")


def _unescape(name: str) -> str:
    out = []
    index = 0
    while index < len(name):
        char = name[index]
        if char == "\\" and index + 1 < len(name):
            following = name[index + 1]
            out.append("\n" if following == "n" else following)
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def format_sums(entries: list[tuple[str, str]]) -> str:
    """``(name, hex digest)`` pairs as the text of a SHA256SUMS file, in the given order."""
    lines = []
    for name, digest in entries:
        mark, escaped = _escape(name)
        lines.append(f"{mark}{digest}  {escaped}\n")
    return "".join(lines)


def parse_sums(text: str) -> list[tuple[str, str]]:
    """The ``(name, hex digest)`` pairs of a SHA256SUMS text; ``ValueError`` names the bad line."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match is None:
            raise ValueError(f"line {number} is not '<sha256>  <name>'")
        name = _unescape(match.group(3)) if match.group(1) else match.group(3)
        entries.append((name, match.group(2).lower()))
    return entries


def sha256_file(path: Path, *, limit: int | None = None) -> str:
    """The hex SHA-256 of ``path`` (of its first ``limit`` bytes when given)."""
    digest = hashlib.sha256()
    remaining = limit
    try:
        with open(path, "rb", buffering=0) as handle:
            while remaining is None or remaining > 0:
                size = CHUNK_BYTES if remaining is None else min(CHUNK_BYTES, remaining)
                chunk = handle.read(size)
                if not chunk:
                    break
                digest.update(chunk)
                if remaining is not None:
                    remaining -= len(chunk)
    except OSError as exc:
        raise map_os_error(exc, f"reading {path}") from exc
    return digest.hexdigest()
