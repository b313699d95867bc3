"""The scrub units of a COW data dir: ``data.cow`` (the committed tree) and each snapshot file.

``data.cow`` is checked as ``engine verify`` checks it: the newest committed meta is pinned (its
pages are not reused while the check walks them; compaction waits) and walked on a descriptor of
the scrub's own, through a ``PageFile`` that reads from the file and paces after every page run.
Snapshots are immutable files, walked the same way.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from pathlib import Path

from engines.cow.meta import read_meta_slots
from engines.cow.page import DATA_FILE, PageType
from engines.cow.pagefile import PageFile
from engines.cow.snapshots import SNAPSHOT_DIR, SUFFIX
from engines.cow.tree import CowTree
from engines.cow.verify import verify_file
from engines.reports import VerifyReport
from engines.scrub import Pace, ScrubUnit

__all__ = ["cow_units"]


class _PacedFile(PageFile):
    """Read-only page I/O on the scrub's own descriptor, pacing after each run it reads."""

    def __init__(self, fd: int, path: Path, page_size: int, name: str, pace: Pace) -> None:
        super().__init__(fd, path, page_size, writable=False, name=name)
        self._pace = pace

    def read_run(self, page: int, hwm: int, kinds: tuple[PageType, ...]) -> bytes:
        buffer = super().read_run(page, hwm, kinds)
        self._pace(len(buffer))
        return buffer


def cow_units(data_dir: Path, tree: Callable[[], CowTree], write_lock: threading.RLock) -> list[ScrubUnit]:
    """``data.cow`` of the open ``tree()`` and every snapshot file of ``data_dir``."""

    def check_tree(report: VerifyReport, pace: Pace) -> None:
        current = tree()
        with write_lock:  # no meta is being written while both are read (as Engine.verify does)
            slots = read_meta_slots(current.file.fd, DATA_FILE, current.page_size, allow_truncated=True)
            token, meta = current.pin()
            fd = os.dup(current.file.fd)  # our own: a compaction that swaps the file cannot pull it away
        try:
            verify_file(_PacedFile(fd, data_dir / DATA_FILE, slots.page_size, DATA_FILE, pace), slots, meta, report)
        finally:
            os.close(fd)
            current.unpin(token)

    units = [ScrubUnit(file=DATA_FILE, size=_size(data_dir / DATA_FILE), check=check_tree)]
    folder = data_dir / SNAPSHOT_DIR
    for path in sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []:
        units.append(
            ScrubUnit(
                file=f"{SNAPSHOT_DIR}/{path.name}",
                size=_size(path),
                check=functools.partial(_check_file, path),
                live=path.exists,
            )
        )
    return units


def _check_file(path: Path, report: VerifyReport, pace: Pace) -> None:
    name = f"{SNAPSHOT_DIR}/{path.name}"
    fd = os.open(path, os.O_RDONLY)
    try:
        slots = read_meta_slots(fd, name, None, allow_truncated=True)
        verify_file(_PacedFile(fd, path, slots.page_size, name, pace), slots, slots.newest, report)
    finally:
        os.close(fd)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
