"""Per-segment archive status: ``<data-dir>/wal/archive_status/<segment>.ready`` and ``.done``.

PostgreSQL's ``pg_wal/archive_status`` is the model. When a data dir records a backup repository,
a sealed segment is ``.ready`` until it is safely in the repository's WAL archive, then ``.done``;
only a ``.done`` segment may be recycled. A sealed segment with no status at all (a crash between
the seal and its ``.ready``) counts as ready, as PostgreSQL's ``XLogArchiveCheckDone`` treats it:
the markers can be lost, a segment never is.

The markers are empty files and need no fsync: losing a ``.done`` only means archiving the
segment again (a no-op), and a lost ``.ready`` is the "no status" case above.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["STATUS_DIR", "READY", "DONE", "status_dir", "status_of", "mark", "forget", "reset", "statuses"]

STATUS_DIR = "archive_status"
READY = "ready"
DONE = "done"


def status_dir(wal_dir: Path) -> Path:
    return Path(wal_dir) / STATUS_DIR


def statuses(wal_dir: Path) -> dict[str, str]:
    """``{segment name: "ready" | "done"}`` for every marker present (``done`` wins over ``ready``)."""
    found: dict[str, str] = {}
    try:
        entries = os.listdir(status_dir(wal_dir))
    except FileNotFoundError:
        return found
    for entry in entries:
        name, _, kind = entry.rpartition(".")
        if kind == DONE:
            found[name] = DONE
        elif kind == READY:
            found.setdefault(name, READY)
    return found


def status_of(wal_dir: Path, segment: str) -> str | None:
    folder = status_dir(wal_dir)
    if (folder / f"{segment}.{DONE}").exists():
        return DONE
    if (folder / f"{segment}.{READY}").exists():
        return READY
    return None


def mark(wal_dir: Path, segment: str, kind: str) -> None:
    """Give ``segment`` the status ``kind`` (``.done`` replaces ``.ready``)."""
    folder = status_dir(wal_dir)
    folder.mkdir(exist_ok=True)
    os.close(os.open(folder / f"{segment}.{kind}", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
    if kind == DONE:
        try:
            os.unlink(folder / f"{segment}.{READY}")
        except FileNotFoundError:
            pass


def forget(wal_dir: Path, segment: str) -> None:
    """Drop the markers of a segment that is gone (recycled)."""
    folder = status_dir(wal_dir)
    for kind in (READY, DONE):
        try:
            os.unlink(folder / f"{segment}.{kind}")
        except FileNotFoundError:
            pass


def reset(wal_dir: Path) -> None:
    """Remove every marker: a newly recorded repository starts from scratch."""
    folder = status_dir(wal_dir)
    try:
        entries = os.listdir(folder)
    except FileNotFoundError:
        return
    for entry in entries:
        try:
            os.unlink(folder / entry)
        except FileNotFoundError:
            pass
