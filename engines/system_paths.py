"""Directories no data dir or backup repository may be: ``/``, the system's own, a home directory.

A restore moves what is at its target aside, and a recovery takes a safety copy of it first;
aimed at ``/`` or ``/usr`` by a slip in a config file, that is a disaster of its own (issue 18:
``data_dir = "/"`` passed validation and a dry run planned a 24 GiB copy of ``/``). A data dir
*below* one of these (``/var/lib/drconsole/orders``) is fine.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SYSTEM_DIRECTORIES", "system_directory"]

SYSTEM_DIRECTORIES = frozenset(
    {
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/media",
        "/mnt",
        "/opt",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/srv",
        "/sys",
        "/tmp",
        "/usr",
        "/usr/bin",
        "/usr/lib",
        "/usr/local",
        "/usr/sbin",
        "/usr/share",
        "/var",
        "/var/lib",
        "/var/log",
        "/var/tmp",
        "/var/cache",
        "/var/spool",
    }
)


def system_directory(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot be a data dir or a repository (it is one of those directories), or None."""
    text = os.path.normpath(os.path.abspath(os.fspath(path)))
    try:
        resolved = os.path.normpath(os.path.realpath(text))  # a symlink to / is / too
    except OSError:
        resolved = text
    for candidate in (text, resolved):
        if candidate in SYSTEM_DIRECTORIES:
            return f"{candidate} is a system directory"
    homes = {os.path.normpath(os.path.expanduser("~"))}
    if Path(text).parent == Path("/home"):
        homes.add(text)
    if text in homes or resolved in homes:
        return f"{text} is a home directory"
    return None
