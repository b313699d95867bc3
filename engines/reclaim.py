"""Space a full disk can have back without writing a byte: files the engine itself no longer needs.

On a full disk a flush or a compaction has no room to write its output, and RocksDB cannot even
open read-write (its MANIFEST append fails), so the first space must come from deleting. Only
two kinds of file qualify, both ones the engine would delete on its own:

- **WAL segments** that are sealed, wholly covered by the store's durable LSN, and archived (a
  ``.done`` status) when the data dir records a backup repository. The engine keeps the newest
  ``wal_keep_segments`` of them for standbys; in an emergency they go: a standby that still needs
  one reads it from the archive (that is what ``.done`` guarantees) or is rebuilt. A segment not
  archived yet is never reclaimable, nor is one the store does not cover, nor the newest (open)
  segment. PostgreSQL removes ``wal_keep_size`` segments the same way when the disk fills.
- **Temp files of an atomic replace** (``.NAME.tmp-PID``) whose process is gone: a crash between
  the write and the rename leaves them, and nothing ever reads them.

Nothing else is ours to delete: quarantine and safety copies are moved to another volume, never
deleted (``disk.relocate_quarantine``), and files outside the data dir are reported, not touched.
The list is computed again under the data dir's lock before anything is removed.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engines.errors import map_os_error
from engines.fsutil import QUARANTINE_DIR, fsync_dir
from engines.locking import data_dir_locked
from engines.marker import read_marker
from engines.wal import archive_status
from engines.wal.segments import list_segments

__all__ = ["Reclaimable", "find_reclaimable", "reclaim"]

WAL_DIR = "wal"
_TEMP = re.compile(r"^\..+\.tmp-(\d+)$")
_FOREIGN_TREES = ("rocksdb",)  # rocksdict's own files: its temp files are its business


@dataclass(frozen=True)
class Reclaimable:
    path: str
    bytes: int
    kind: str  # "wal" | "temp"
    why: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _store_lsn(data_dir: Path) -> int:
    from engines.registry import open_engine

    with open_engine(data_dir, mode="ro") as engine:
        return engine.durable_lsn


def _wal_segments(data_dir: Path) -> list[Reclaimable]:
    wal_dir = data_dir / WAL_DIR
    segments = list_segments(wal_dir)
    if len(segments) < 2:
        return []
    covered = _store_lsn(data_dir)
    marker = read_marker(data_dir)
    archived_only = marker is not None and marker.archive is not None
    statuses = archive_status.statuses(wal_dir)
    found = []
    for segment, following in zip(segments, segments[1:], strict=False):  # the newest is never one
        if following.first_lsn - 1 > covered:
            break  # the store does not cover it (nor any later one)
        if archived_only and statuses.get(segment.path.name) != archive_status.DONE:
            break  # not in the archive yet: it stays, and so does every later one
        why = f"LSN {segment.first_lsn}-{following.first_lsn - 1}, covered by the store (LSN {covered})"
        found.append(Reclaimable(str(segment.path), segment.size, "wal", why + (", archived" if archived_only else "")))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _temp_files(data_dir: Path) -> list[Reclaimable]:
    found = []
    for folder, dirs, files in os.walk(data_dir):
        if Path(folder) == data_dir:
            dirs[:] = [name for name in dirs if name not in (QUARANTINE_DIR, *_FOREIGN_TREES)]
        for name in files:
            match = _TEMP.match(name)
            if match is None or _alive(int(match.group(1))):
                continue
            path = Path(folder) / name
            try:
                size = path.lstat().st_size
            except FileNotFoundError:
                continue
            found.append(
                Reclaimable(str(path), size, "temp", f"an atomic write's temp file; pid {match.group(1)} is gone")
            )
    return found


def find_reclaimable(data_dir: Path) -> list[Reclaimable]:
    """What of ``data_dir`` can be deleted without losing anything: see the module docstring."""
    data_dir = Path(data_dir)
    return [*_wal_segments(data_dir), *_temp_files(data_dir)]


def reclaim(data_dir: Path) -> list[Reclaimable]:
    """Delete what ``find_reclaimable`` finds, under the data dir's lock; what was deleted.

    LockedError when a process holds the data dir (a node: it recycles its WAL itself on flush).
    """
    data_dir = Path(data_dir)
    with data_dir_locked(data_dir, hint="stop the node that holds it, or flush it through its API"):
        found = find_reclaimable(data_dir)
        for item in found:
            try:
                os.unlink(item.path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise map_os_error(exc, f"removing {item.path}") from exc
        for folder in sorted({str(Path(item.path).parent) for item in found}):
            fsync_dir(Path(folder))
    return found
