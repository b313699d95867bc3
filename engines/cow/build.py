"""Writing a whole COW file from sorted records: new files, compaction, salvage and import.

Leaves are packed full, in key order, straight onto consecutive pages; the branch levels follow,
then both meta pages. The file is written under a temporary name, fsynced, and renamed into
place (then the directory is fsynced), so a crash leaves the old file or the new one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from engines import fsio
from engines.cow.meta import Meta, encode_meta
from engines.cow.node import (
    BRANCH_ENTRY_OVERHEAD,
    LEAF_ENTRY_OVERHEAD,
    OverflowRef,
    encode_branch,
    encode_leaf,
    make_run,
    stamp,
)
from engines.cow.page import HEADER_SIZE, PageType
from engines.errors import InvalidArgumentError, map_os_error
from engines.fsutil import fsync_dir

__all__ = ["build_file"]

_WRITE_CHUNK = 4 * 2**20


class _Writer:
    """Appends runs at consecutive pages through one buffered file."""

    def __init__(self, fd: int, page_size: int) -> None:
        self.fd = fd
        self.page_size = page_size
        self.next_page = 2
        self.buffer: list[bytes] = []
        self.buffered = 0
        self.offset = 2 * page_size

    def append(self, run: bytearray) -> int:
        page = self.next_page
        stamp(run, page)
        self.next_page += len(run) // self.page_size
        self.buffer.append(bytes(run))
        self.buffered += len(run)
        if self.buffered >= _WRITE_CHUNK:
            self.flush()
        return page

    def flush(self) -> None:
        if self.buffer:
            data = b"".join(self.buffer)
            view = memoryview(data)
            while view:
                written = os.pwrite(self.fd, view, self.offset)
                self.offset += written
                view = view[written:]
            self.buffer = []
            self.buffered = 0


def build_file(
    path: Path,
    records: Iterable[tuple[bytes, bytes]],
    *,
    page_size: int,
    lsn: int,
    max_keys_per_node: int = 0,
    txid: int = 1,
) -> Meta:
    """Write ``path`` holding ``records`` (strictly ascending keys) as of WAL ``lsn``.

    Raises:
        InvalidArgumentError: the keys are not strictly ascending.
        DiskFullError, StorageIOError: writing failed; ``path`` is untouched.
    """
    path = Path(path)
    temp = path.with_name(f".{path.name}.build-{os.getpid()}")
    try:
        fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            meta = _write(fd, records, page_size=page_size, lsn=lsn, max_keys=max_keys_per_node, txid=txid)
            fsio.fsync(fd)
        finally:
            os.close(fd)
        fsio.replace(temp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        raise map_os_error(exc, f"writing {path}") from exc
    finally:
        if temp.exists():
            temp.unlink()  # our own partial build, never the live file
    return meta


def _write(
    fd: int, records: Iterable[tuple[bytes, bytes]], *, page_size: int, lsn: int, max_keys: int, txid: int
) -> Meta:
    writer = _Writer(fd, page_size)
    capacity = page_size - HEADER_SIZE
    threshold = page_size // 4
    level: list[tuple[bytes, int]] = []  # (first key, page) of the level being built
    keys: list[bytes] = []
    values: list[bytes | OverflowRef] = []
    filled = 0
    count = 0
    previous: bytes | None = None

    def flush_leaf() -> None:
        flags, body = encode_leaf(keys, values)
        level.append(
            (keys[0] if keys else b"", writer.append(make_run(PageType.LEAF, flags, len(keys), txid, body, page_size)))
        )

    for key, value in records:
        if previous is not None and key <= previous:
            raise InvalidArgumentError(f"records must be in strictly ascending key order: {key!r} after {previous!r}")
        previous = key
        stored: bytes | OverflowRef = value
        if len(value) > threshold:
            run = make_run(PageType.OVERFLOW, 0, len(value), txid, value, page_size)
            stored = OverflowRef(writer.append(run), len(value), len(run) // page_size)
        size = LEAF_ENTRY_OVERHEAD + len(key) + len(stored)
        if keys and (filled + size > capacity or (max_keys and len(keys) >= max_keys)):
            flush_leaf()
            keys, values, filled = [], [], 0
        keys.append(key)
        values.append(stored)
        filled += size
        count += 1
    if keys or not level:
        flush_leaf()
    while len(level) > 1:
        upper: list[tuple[bytes, int]] = []
        group_keys: list[bytes] = []
        group_pages: list[int] = []
        filled = 0
        for key, page in level:
            size = BRANCH_ENTRY_OVERHEAD + len(key)
            # At least two children a branch, so each level is smaller than the one below.
            if len(group_keys) >= 2 and (filled + size > capacity or (max_keys and len(group_keys) >= max_keys)):
                upper.append(
                    (
                        group_keys[0],
                        writer.append(
                            make_run(
                                PageType.BRANCH,
                                0,
                                len(group_keys),
                                txid,
                                encode_branch(group_keys, group_pages),
                                page_size,
                            )
                        ),
                    )
                )
                group_keys, group_pages, filled = [], [], 0
            group_keys.append(key)
            group_pages.append(page)
            filled += size
        upper.append(
            (
                group_keys[0],
                writer.append(
                    make_run(
                        PageType.BRANCH, 0, len(group_keys), txid, encode_branch(group_keys, group_pages), page_size
                    )
                ),
            )
        )
        level = upper
    writer.flush()
    root = level[0][1]
    hwm = writer.next_page
    meta = Meta(txid, root, 0, hwm, lsn, count, page_size, slot=0)
    for slot in (0, 1):
        os.pwrite(fd, encode_meta(meta.with_slot(slot)), slot * page_size)
    return meta
