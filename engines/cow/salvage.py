"""Salvage: rebuild ``data.cow`` from every record that can still be read, and say what could not.

The tree of the newest valid meta is walked; a subtree that cannot be read leaves a key range
lost, which leaf pages found elsewhere in the file (orphans of earlier commits) fill in, newest
page first (the report says those values may predate later changes). With no valid meta, every
readable leaf page is used that way. The new tree claims the LSN before the first record the
WAL still holds, so the next open replays all of it (replay is idempotent for what the tree
holds). The damaged file is kept in quarantine.
"""

from __future__ import annotations

import os
from pathlib import Path

from engines.cow.build import build_file
from engines.cow.meta import Meta, MetaSlots
from engines.cow.node import OverflowRef, decode_leaf
from engines.cow.offline import exclusive, open_slots, wal_first_lsn
from engines.cow.page import (
    DATA_FILE,
    DEFAULT_PAGE_SIZE,
    HEADER,
    HEADER_SIZE,
    PageCorruptionError,
    PageType,
    verify_checksum,
)
from engines.cow.pagefile import PageFile
from engines.errors import CorruptionError
from engines.fsutil import fsync_dir, new_quarantine
from engines.marker import read_marker
from engines.reports import RepairReport

__all__ = ["salvage"]


def salvage(data_dir: Path, *, lsn: int | None = None) -> RepairReport:
    """Rebuild ``data.cow`` from every record that can still be read.

    The tree of the newest valid meta is walked; for a subtree that cannot be read, leaf pages
    found elsewhere in the file (orphans of earlier commits) fill in its key range, newest page
    first, and the report says those values may predate later changes. With no valid meta,
    every readable leaf page is used that way. The new tree's LSN is set so that the next open
    replays every WAL record still present (replay is idempotent), or to ``lsn`` if given.
    """
    data_dir = Path(data_dir)
    report = RepairReport(backend="cow")
    with exclusive(data_dir):
        source = data_dir / DATA_FILE
        fd = os.open(source, os.O_RDONLY)
        try:
            records, meta_lsn, page_size = _Salvager(fd, data_dir, report).run()
        finally:
            os.close(fd)
        if lsn is None:
            lsn = _salvage_lsn(data_dir, meta_lsn, report)
        quarantine = new_quarantine(data_dir, "cow-salvage")
        os.link(source, quarantine / DATA_FILE)  # the damaged file, kept whole
        fsync_dir(quarantine)
        report.quarantine = str(quarantine)
        report.safety_copy = str(quarantine / DATA_FILE)
        report.quarantined.append(str(quarantine / DATA_FILE))
        build_file(source, sorted(records.items()), page_size=page_size, lsn=lsn)
    report.keys_after = len(records)
    report.actions.append(
        f"salvaged {len(records)} records into a new {DATA_FILE}; the damaged file is in {quarantine}"
    )
    report.actions.append(f"the next open replays the WAL from LSN {lsn + 1}")
    report.ok = not report.lost
    return report


def _salvage_lsn(data_dir: Path, meta_lsn: int | None, report: RepairReport) -> int:
    """The LSN the salvaged tree claims: replay then covers every WAL record still present."""
    first_wal = wal_first_lsn(data_dir)
    if first_wal is None:
        if meta_lsn is None:
            report.lost.append(
                "no meta and no WAL: the salvaged tree starts again at LSN 0; if this node's "
                "WAL was archived, restore it before writing"
            )
            return 0
        return meta_lsn
    if meta_lsn is None:
        report.actions.append(
            f"no meta: the salvaged records are taken as the state before LSN {first_wal}, the first one the WAL holds"
        )
    elif first_wal - 1 > meta_lsn:
        report.lost.append(
            f"LSNs {meta_lsn + 1}..{first_wal - 1}: in neither the tree nor the WAL; replay them "
            f"from the WAL archive if there is one"
        )
    # Replaying from the start of the WAL is idempotent for what the salvaged tree already holds.
    return first_wal - 1


class _Salvager:
    def __init__(self, fd: int, data_dir: Path, report: RepairReport) -> None:
        self.fd = fd
        self.data_dir = data_dir
        self.report = report
        self.records: dict[bytes, bytes] = {}
        self.lost_ranges: list[tuple[bytes | None, bytes | None]] = []

    def run(self) -> tuple[dict[bytes, bytes], int | None, int]:
        report = self.report
        try:
            slots: MetaSlots | None = open_slots(self.data_dir, self.fd)
        except PageCorruptionError as exc:
            report.lost.append(f"no valid meta page ({exc.message}): the tree's root is unknown")
            slots = None
        if slots is None:
            page_size = self._guess_page_size()
            file = PageFile(self.fd, self.data_dir / DATA_FILE, page_size, writable=False, name=DATA_FILE)
            hwm = os.fstat(self.fd).st_size // page_size
            self.lost_ranges = [(None, None)]
            report.keys_before = None
            self._orphans(file, hwm, None, set())
            report.lost.append(
                "values come from the newest readable leaf page of each key: deleted keys may "
                "be back and values may be older than the last writes before the damage"
            )
            return self.records, None, page_size
        meta = slots.newest
        file = PageFile(self.fd, self.data_dir / DATA_FILE, slots.page_size, writable=False, name=DATA_FILE)
        report.keys_before = meta.key_count
        visited = self._walk(file, meta)
        if self.lost_ranges:
            self._orphans(file, min(meta.hwm, os.fstat(self.fd).st_size // slots.page_size), meta.txid, visited)
        return self.records, meta.lsn, slots.page_size

    def _guess_page_size(self) -> int:
        marker = read_marker(self.data_dir)
        if marker is not None and isinstance(marker.options.get("backend"), dict):
            size = marker.options["backend"].get("page_size")
            if isinstance(size, int):
                return size
        for size in (4096, 8192, 16384, 32768, 65536, 1024, 2048):
            page = os.pread(self.fd, size, 2 * size)
            if (
                len(page) == size
                and HEADER.unpack_from(page)[4] == 2
                and HEADER.unpack_from(page)[5] == 0
                and verify_checksum(page)
            ):
                return size
        return DEFAULT_PAGE_SIZE

    def _walk(self, file: PageFile, meta: Meta) -> set[int]:
        visited: set[int] = set()
        stack: list[tuple[int, bytes | None, bytes | None]] = [(meta.root, None, None)]
        while stack:
            page, low, high = stack.pop()
            if page in visited:
                continue
            visited.add(page)
            try:
                node = file.read_node(page, meta.hwm)
            except CorruptionError as exc:
                self.lost_ranges.append((low, high))
                self.report.lost.append(
                    f"page {page} unreadable ({exc.message}): keys in "
                    f"[{_show(low)}, {_show(high)}) come from older pages if any"
                )
                continue
            if node.__class__.__name__ == "Leaf":
                self._take_leaf(file, meta.hwm, node.keys, node.values, page)  # type: ignore[union-attr]
                continue
            keys = node.keys
            for index in range(len(keys) - 1, -1, -1):
                stack.append(
                    (
                        int(node.children[index]),  # type: ignore[union-attr, arg-type]
                        keys[index] if index else low,
                        keys[index + 1] if index + 1 < len(keys) else high,
                    )
                )
        return visited

    def _take_leaf(
        self, file: PageFile, hwm: int, keys: list[bytes], values: list[bytes | OverflowRef], page: int
    ) -> None:
        for key, value in zip(keys, values):
            if value.__class__ is OverflowRef:
                try:
                    value = file.read_overflow(value, hwm)  # type: ignore[arg-type]
                except CorruptionError as exc:
                    self.report.lost.append(
                        f"key {_show(key)} (leaf page {page}): its value is unreadable ({exc.message})"
                    )
                    continue
            self.records[key] = value  # type: ignore[assignment]

    def _orphans(self, file: PageFile, pages: int, max_txid: int | None, visited: set[int]) -> None:
        """Fill lost key ranges from readable leaf pages the walk did not reach, newest first."""
        found: list[tuple[int, int]] = []
        page_size = file.page_size
        for page in range(2, pages):
            if page in visited:
                continue
            head = os.pread(self.fd, HEADER_SIZE, page * page_size)
            if len(head) < HEADER_SIZE:
                break
            _checksum, kind, _flags, _reserved, page_id, _overflow, _count, txid = HEADER.unpack_from(head)
            if kind == PageType.LEAF and page_id == page and (max_txid is None or txid <= max_txid):
                found.append((txid, page))
        taken: set[bytes] = set()
        recovered = 0
        for _txid, page in sorted(found, reverse=True):
            try:
                buffer = file.read_run(page, pages, (PageType.LEAF,))
                leaf = decode_leaf(buffer, page, page_size)
            except (CorruptionError, ValueError):
                continue
            for key, value in zip(leaf.keys, leaf.values):
                if key in taken or key in self.records or not self._in_lost_range(key):
                    continue
                if value.__class__ is OverflowRef:
                    try:
                        value = file.read_overflow(value, pages)  # type: ignore[arg-type]
                    except CorruptionError:
                        continue
                taken.add(key)
                self.records[key] = value  # type: ignore[assignment]
                recovered += 1
        if recovered and max_txid is None:
            self.report.actions.append(
                f"read {recovered} records from {len(found)} leaf pages found by scanning the whole file"
            )
        elif recovered:
            self.report.lost.append(
                f"{recovered} records were recovered from leaf pages outside the tree "
                f"(earlier commits): they may be older than the lost pages held"
            )
        if max_txid is not None:
            self.report.actions.append(f"searched {len(found)} leaf pages outside the tree for lost key ranges")

    def _in_lost_range(self, key: bytes) -> bool:
        return any((low is None or key >= low) and (high is None or key < high) for low, high in self.lost_ranges)


def _show(key: bytes | None) -> str:
    if key is None:
        return "-inf/+inf"
    return repr(key)
