"""Named point-in-time snapshots in ``<data-dir>/snapshots/``, and the copy that makes them.

A snapshot is a standalone COW file (``snapshots/<name>.cow``) holding the tree of one committed
meta. Taking one is cheap for writers: under the write lock the engine commits and pins that
meta (its pages are not reused while pinned); the pages are then copied with the lock released
while writes go on. The same copy makes ``checkpoint``'s ``data.cow``. A snapshot holds the WAL
LSN it covers, so a data dir can be rebuilt from it plus WAL replay (``repair.py``).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from engines import fsio
from engines.cow.config import CowSettings
from engines.cow.meta import Meta, encode_meta
from engines.cow.pagefile import PageFile
from engines.cow.store import open_tree
from engines.errors import InvalidArgumentError, NotFoundError, map_os_error
from engines.fsutil import fsync_dir

__all__ = [
    "SNAPSHOT_DIR",
    "SnapshotInfo",
    "SnapshotReader",
    "copy_committed",
    "list_snapshots",
    "open_snapshot",
    "snapshot_path",
]

SNAPSHOT_DIR = "snapshots"
SUFFIX = ".cow"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_COPY_CHUNK = 8 * 2**20


@dataclass(frozen=True)
class SnapshotInfo:
    name: str
    path: str
    lsn: int
    txid: int
    key_count: int
    size_bytes: int
    created_at: float


def snapshot_path(data_dir: Path, name: str) -> Path:
    """Where snapshot ``name`` lives. Raises InvalidArgumentError for a name that is not plain."""
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith(SUFFIX):
        raise InvalidArgumentError(
            f"bad snapshot name {name!r}", hint="use letters, digits, '.', '_' and '-' (at most 128), no path"
        )
    return Path(data_dir) / SNAPSHOT_DIR / f"{name}{SUFFIX}"


def copy_committed(file: PageFile, meta: Meta, dest: Path) -> int:
    """Write a standalone COW file at ``dest`` holding ``meta``'s tree; returns its size.

    ``meta``'s pages must be pinned. Free pages are copied too, as they are (another commit may
    be writing them): the copy's freelist says they are free, so nothing ever reads them.
    """
    dest = Path(dest)
    temp = dest.with_name(f".{dest.name}.partial")
    page_size = file.page_size
    try:
        out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            offset = 2 * page_size
            end = meta.hwm * page_size
            while offset < end:
                count = min(_COPY_CHUNK, end - offset)
                try:
                    copied = os.copy_file_range(file.fd, out, count, offset, offset)
                except OSError:  # not supported between these file systems: copy by hand
                    data = os.pread(file.fd, count, offset)
                    copied = os.pwrite(out, data, offset)
                if copied <= 0:
                    break  # the rest is free pages a commit gave back: the copy holds them as holes
                offset += copied
            os.ftruncate(out, end)
            for slot in (0, 1):
                os.pwrite(out, encode_meta(meta.with_slot(slot)), slot * page_size)
            fsio.fsync(out)
        finally:
            os.close(out)
        fsio.replace(temp, dest)
        fsync_dir(dest.parent)
    except OSError as exc:
        raise map_os_error(exc, f"copying {file.name} to {dest}") from exc
    finally:
        if temp.exists():
            temp.unlink()  # our own partial copy
    return end


def list_snapshots(data_dir: Path) -> list[SnapshotInfo]:
    """Every snapshot of ``data_dir``, oldest first; unreadable ones are listed with lsn -1."""
    folder = Path(data_dir) / SNAPSHOT_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        stat = path.stat()
        try:
            with open_snapshot(path) as reader:
                meta = reader.meta
            lsn, txid, keys = meta.lsn, meta.txid, meta.key_count
        except Exception:  # noqa: BLE001 - a damaged snapshot is listed, not fatal to the listing
            lsn, txid, keys = -1, -1, -1
        found.append(SnapshotInfo(path.stem, str(path), lsn, txid, keys, stat.st_size, stat.st_mtime))
    found.sort(key=lambda info: (info.created_at, info.name))
    return found


class SnapshotReader:
    """A snapshot opened read-only: ``get``, ordered ``scan``, ``meta``. Never writes."""

    def __init__(self, path: Path, settings: CowSettings | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise NotFoundError(f"snapshot {self.path} does not exist")
        self.tree, self.slots = open_tree(
            self.path,
            settings or CowSettings(cache_bytes=8 * 2**20),
            writable=False,
            name=f"{SNAPSHOT_DIR}/{self.path.name}",
            check_page_size=False,
        )

    @property
    def meta(self) -> Meta:
        return self.tree.meta

    def get(self, key: bytes) -> bytes | None:
        return self.tree.get(bytes(key))

    def scan(self, start: bytes | None = None, end: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        return self.tree.scan(start, end)

    def close(self) -> None:
        self.tree.close()

    def __enter__(self) -> SnapshotReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def open_snapshot(path: Path) -> SnapshotReader:
    return SnapshotReader(path)


def default_name() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{time.time_ns() % 1_000_000_000:09d}"
