"""Where a backup repository lives: a local directory or ``sftp://[USER@]HOST[:PORT]/PATH``.

Every entry point that takes a repository (``--repo``, ``--backup-repo``, ``backup_repo`` in the
config, a playbook's ``repo`` parameter) accepts both spellings; ``parse_location`` tells them
apart. A path is made absolute so messages say exactly where; a URL is kept as written apart from
normalising it (``sftp://host//srv/x`` and ``sftp://host/srv/x`` are one place).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from engines.errors import InvalidArgumentError

__all__ = [
    "SFTP_SCHEME",
    "SftpLocation",
    "Location",
    "parse_location",
    "is_remote",
    "location_text",
    "register_working_copy",
    "forget_working_copy",
    "shown_location",
]

SFTP_SCHEME = "sftp://"


@dataclass(frozen=True)
class SftpLocation:
    """A repository on an SSH host, reached over SFTP. ``path`` is absolute on that host, or
    relative to the account's home when the URL says ``/~/dir``."""

    host: str
    path: str
    user: str | None = None
    port: int | None = None

    @property
    def url(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        path = self.path if self.path.startswith("/") else f"/~/{self.path}"
        return f"{SFTP_SCHEME}{user}{self.host}{port}{path}"

    def __str__(self) -> str:
        return self.url


Location = Path | SftpLocation


def is_remote(value: object) -> bool:
    """An ``sftp://`` location (also one that went through ``Path()``, which folds ``//`` to ``/``)."""
    if isinstance(value, SftpLocation):
        return True
    return isinstance(value, (str, os.PathLike)) and os.fspath(value).startswith("sftp:/")


def parse_location(value: str | os.PathLike[str] | SftpLocation) -> Location:
    """A local path (made absolute) or an ``SftpLocation``.

    Raises:
        InvalidArgumentError: an ``sftp://`` URL without a host or a path, or another scheme.
    """
    if isinstance(value, SftpLocation):
        return value
    text = os.fspath(value)
    if text.startswith("sftp:/") and not text.startswith(SFTP_SCHEME):
        text = SFTP_SCHEME + text[len("sftp:/") :]  # a URL that went through Path() lost a slash
    if "://" not in text:
        return Path(text).absolute()
    if not text.startswith(SFTP_SCHEME):
        raise InvalidArgumentError(
            f"{text!r}: only local paths and sftp://USER@HOST[:PORT]/PATH repositories are supported"
        )
    parts = urlsplit(text)
    hint = "write it as sftp://USER@HOST[:PORT]/ABSOLUTE/PATH (or /~/PATH, under the account's home)"
    try:
        port = parts.port
    except ValueError:
        raise InvalidArgumentError(f"{text!r}: the port is not a number", hint=hint) from None
    path = unquote(parts.path)
    if not parts.hostname or path.strip("/") in ("", "~") or parts.query or parts.fragment:
        raise InvalidArgumentError(f"{text!r} is not a usable sftp repository URL", hint=hint)
    if path.startswith("/~/"):
        path = path[3:].strip("/")
    else:
        path = "/" + path.strip("/")
    while "//" in path:
        path = path.replace("//", "/")
    return SftpLocation(
        host=parts.hostname, path=path, user=unquote(parts.username) if parts.username else None, port=port
    )


def location_text(value: str | os.PathLike[str] | SftpLocation) -> str:
    """How messages and records spell a repository: its absolute path or its URL."""
    location = parse_location(value)
    return location.url if isinstance(location, SftpLocation) else str(location)


_WORKING_COPIES: dict[str, str] = {}
_WORKING_COPIES_LOCK = threading.Lock()


def register_working_copy(root: Path, location: str) -> None:
    """``root`` is a local working copy of the repository at ``location`` (engines/backup/mirror.py).

    The backup code works on the copy; what it records (the data dir's repository) and what its
    messages name is the repository itself.
    """
    with _WORKING_COPIES_LOCK:
        _WORKING_COPIES[os.path.abspath(root)] = location


def forget_working_copy(root: Path) -> None:
    with _WORKING_COPIES_LOCK:
        _WORKING_COPIES.pop(os.path.abspath(root), None)


def shown_location(root: Path) -> str:
    """The repository a local root stands for: its URL for a working copy, else the path itself."""
    with _WORKING_COPIES_LOCK:
        return _WORKING_COPIES.get(os.path.abspath(root), str(root))
