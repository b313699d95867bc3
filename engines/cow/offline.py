"""What every repair of a closed COW data dir needs: its lock, the WAL's start, a safety copy."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engines import fsio
from engines.base import WAL_DIR
from engines.cow.meta import MetaSlots, read_meta_slots
from engines.cow.page import DATA_FILE
from engines.errors import NotFoundError
from engines.fsutil import fsync_dir, new_quarantine
from engines.locking import data_dir_locked
from engines.reports import RepairReport
from engines.wal import list_segments

__all__ = ["exclusive", "open_slots", "safety_copy", "wal_first_lsn"]


@contextmanager
def exclusive(data_dir: Path) -> Iterator[None]:
    """Hold the data dir's lock (the one ``Engine`` takes), so no engine has it open."""
    if not (data_dir / DATA_FILE).exists():
        raise NotFoundError(f"{data_dir / DATA_FILE} does not exist", hint="is this a cow data dir?")
    with data_dir_locked(data_dir, hint="stop the node that holds it before repairing"):
        yield


def wal_first_lsn(data_dir: Path) -> int | None:
    segments = list_segments(data_dir / WAL_DIR)
    return segments[0].first_lsn if segments else None


def safety_copy(data_dir: Path, label: str, report: RepairReport) -> Path:
    """Copy ``data.cow`` into a new quarantine folder before it is changed in place."""
    quarantine = new_quarantine(data_dir, label)
    target = quarantine / DATA_FILE
    shutil.copyfile(data_dir / DATA_FILE, target)
    with open(target, "rb+") as handle:
        fsio.fsync(handle.fileno())
    fsync_dir(quarantine)
    report.quarantine = str(quarantine)
    report.safety_copy = str(target)
    report.actions.append(f"safety copy of {DATA_FILE} in {target}")
    return quarantine


def open_slots(data_dir: Path, fd: int) -> MetaSlots:
    return read_meta_slots(fd, DATA_FILE, None, allow_truncated=True)
