"""Repair primitives for a COW data dir that no engine has open. Best effort, never silent.

* ``rollback_to_older_meta``: make the older meta's tree current again (its pages are intact by
  the freelist rule); the next open replays the WAL from its LSN.
* ``rebuild_freelist``: the tree is sound but the freelist (or the key count) is not: recount.
* ``salvage``: read every readable record into a new file; report what could not be read.
* ``rebuild_from_snapshot``: put a snapshot (or any COW file, e.g. from a backup) in place; the
  next open replays the WAL from the snapshot's LSN.
* ``repair``: pick the least destructive of these from what ``verify`` finds.

Each takes the data dir's lock, keeps the file it replaces or changes in
``.quarantine/<ts>-cow-*/`` and says in its report what it did and what is lost.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engines.base import LOCK_NAME, WAL_DIR
from engines.cow.build import build_file
from engines.cow.freelist import Freelist
from engines.cow.meta import Meta, MetaSlots, read_meta_slots
from engines.cow.node import OverflowRef, decode_leaf, make_run, stamp
from engines.cow.page import (
    DATA_FILE,
    DEFAULT_PAGE_SIZE,
    HEADER,
    HEADER_SIZE,
    PageCorruptionError,
    PageType,
    pages_for,
    verify_checksum,
)
from engines.cow.pagefile import PageFile
from engines.cow.verify import inspect, verify_path
from engines.errors import (
    CorruptionError,
    LockedError,
    NotFoundError,
    SafetyRefusal,
    UnsupportedFormatError,
    map_os_error,
)
from engines.fsutil import fsync_dir, new_quarantine
from engines.marker import read_marker
from engines.reports import RepairReport, VerifyReport
from engines.wal import list_segments

__all__ = ["rebuild_freelist", "rebuild_from_snapshot", "repair", "rollback_to_older_meta", "salvage"]

# Verify problems that a freelist rebuild mends (the tree itself is sound).
_FREELIST_AREAS = {"freelist", "space"}


@contextmanager
def _exclusive(data_dir: Path) -> Iterator[None]:
    """Hold the data dir's lock (the one ``Engine`` takes), so no engine has it open."""
    if not (data_dir / DATA_FILE).exists():
        raise NotFoundError(f"{data_dir / DATA_FILE} does not exist", hint="is this a cow data dir?")
    try:
        fd = os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise map_os_error(exc, f"locking {data_dir}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise LockedError(f"{data_dir} is in use by another process",
                              hint="stop the node that holds it before repairing") from exc
        yield
    finally:
        os.close(fd)


def _wal_first_lsn(data_dir: Path) -> int | None:
    segments = list_segments(data_dir / WAL_DIR)
    return segments[0].first_lsn if segments else None


def _safety_copy(data_dir: Path, label: str, report: RepairReport) -> Path:
    """Copy ``data.cow`` into a new quarantine folder before it is changed in place."""
    quarantine = new_quarantine(data_dir, label)
    target = quarantine / DATA_FILE
    shutil.copyfile(data_dir / DATA_FILE, target)
    with open(target, "rb+") as handle:
        os.fsync(handle.fileno())
    fsync_dir(quarantine)
    report.quarantine = str(quarantine)
    report.safety_copy = str(target)
    report.actions.append(f"safety copy of {DATA_FILE} in {target}")
    return quarantine


def _open_slots(data_dir: Path, fd: int) -> MetaSlots:
    return read_meta_slots(fd, DATA_FILE, None, allow_truncated=True)


def _write_state(fd: int, page_size: int, keep: Meta, *, txid: int, slot: int, free: list[int],
                 pending: list[int], key_count: int) -> Meta:
    """Write a new freelist run past ``keep.hwm`` and a meta for ``keep``'s tree into ``slot``."""
    freelist = Freelist(free, {txid: pending} if pending else None)
    span = pages_for(freelist.encoded_size(), page_size)
    first = keep.hwm
    count, body = freelist.encode()
    run = make_run(PageType.FREELIST, 0, count, txid, body, page_size)
    run.extend(bytes(span * page_size - len(run)))
    HEADER.pack_into(run, 0, 0, PageType.FREELIST, 0, 0, 0, span - 1, count, txid)
    stamp(run, first)
    file = PageFile(fd, Path(DATA_FILE), page_size, writable=True, name=DATA_FILE)
    file.write_runs([(first, run)])
    file.sync()
    meta = Meta(txid, keep.root, first, first + span, keep.lsn, key_count, page_size, slot)
    file.write_meta(meta)
    file.sync()
    return meta


# ---------------------------------------------------------------------- rollback
def rollback_to_older_meta(data_dir: Path, *, allow_loss: bool = False) -> RepairReport:
    """Make the older meta current: for a newest commit whose pages are damaged.

    The changes after the older meta's LSN come back from the WAL on the next open; when the WAL
    no longer holds them this refuses unless ``allow_loss``.

    Raises:
        SafetyRefusal: there is no older meta, its tree is damaged too, or the WAL does not
            cover what would be rolled back (without ``allow_loss``).
    """
    data_dir = Path(data_dir)
    report = RepairReport(backend="cow")
    with _exclusive(data_dir):
        fd = os.open(data_dir / DATA_FILE, os.O_RDWR)
        try:
            slots = _open_slots(data_dir, fd)
            older = slots.older
            if older is None or older.txid >= slots.newest.txid:
                raise SafetyRefusal(f"{DATA_FILE} has no older meta to roll back to "
                                    f"(valid metas: {[m.slot for m in slots.metas]})",
                                    hint="salvage the readable records instead")
            newest = slots.newest
            file = PageFile(fd, data_dir / DATA_FILE, slots.page_size, writable=True, name=DATA_FILE)
            found = inspect(file, slots, older)
            if not found.tree_intact:
                problems = "; ".join(p.detail for p in found.report.problems[:3])
                raise SafetyRefusal(f"the older meta's tree (txid {older.txid}) is damaged too: {problems}",
                                    hint="salvage the readable records instead")
            first_wal = _wal_first_lsn(data_dir)
            covered = first_wal is not None and first_wal <= older.lsn + 1 or newest.lsn == older.lsn
            if not covered and not allow_loss:
                raise SafetyRefusal(
                    f"rolling back to LSN {older.lsn} would lose LSNs {older.lsn + 1}..{newest.lsn}: "
                    f"the WAL starts at {first_wal}", hint="restore the WAL from the archive first, "
                    "or pass allow_loss=True and replay the archive afterwards")
            _safety_copy(data_dir, "cow-rollback", report)
            reachable = found.reachable
            free = [page for page in range(2, older.hwm) if not reachable[page]]
            pending = []
            if older.freelist:  # the fallback meta (older, left in place) still points at it
                span = HEADER.unpack_from(os.pread(fd, HEADER_SIZE, older.freelist * slots.page_size))[5] + 1
                pending = list(range(older.freelist, older.freelist + span))
                keep = set(pending)
                free = [page for page in free if page not in keep]
            meta = _write_state(fd, slots.page_size, older, txid=newest.txid + 1, slot=newest.slot,
                                free=free, pending=pending, key_count=found.keys)
        finally:
            os.close(fd)
    report.actions.append(f"rolled back from txid {newest.txid} (LSN {newest.lsn}) to the tree of txid "
                          f"{older.txid} (LSN {older.lsn}), now committed as txid {meta.txid}")
    if covered:
        report.actions.append(f"the next open replays the WAL from LSN {older.lsn + 1}")
    else:
        report.lost.append(f"LSNs {older.lsn + 1}..{newest.lsn}: not in the WAL (it starts at {first_wal}); "
                           f"replay them from the WAL archive")
        report.ok = False
    report.keys_after = found.keys
    return report


# ---------------------------------------------------------------------- freelist
def rebuild_freelist(data_dir: Path) -> RepairReport:
    """Recount free pages and keys from the tree of the newest meta (which must be sound)."""
    data_dir = Path(data_dir)
    report = RepairReport(backend="cow")
    with _exclusive(data_dir):
        fd = os.open(data_dir / DATA_FILE, os.O_RDWR)
        try:
            slots = _open_slots(data_dir, fd)
            newest = slots.newest
            file = PageFile(fd, data_dir / DATA_FILE, slots.page_size, writable=True, name=DATA_FILE)
            found = inspect(file, slots, newest)
            if not found.tree_intact:
                raise SafetyRefusal("the tree itself is damaged; rebuilding the freelist would not help",
                                    hint="roll back to the older meta or salvage")
            _safety_copy(data_dir, "cow-freelist", report)
            pending: list[int] = []
            if newest.freelist:  # newest stays as the fallback: keep its freelist run untouched
                head = os.pread(fd, HEADER_SIZE, newest.freelist * slots.page_size)
                span = HEADER.unpack_from(head)[5] + 1 if len(head) == HEADER_SIZE else 1
                span = max(1, min(span, newest.hwm - newest.freelist))
                pending = list(range(newest.freelist, newest.freelist + span))
            reachable = found.reachable
            keep = set(pending)
            free = [page for page in range(2, newest.hwm) if not reachable[page] and page not in keep]
            meta = _write_state(fd, slots.page_size, newest, txid=newest.txid + 1, slot=1 - newest.slot,
                                free=free, pending=pending, key_count=found.keys)
        finally:
            os.close(fd)
    report.actions.append(f"rebuilt the freelist ({len(free)} free pages) and key count ({found.keys}) "
                          f"as txid {meta.txid}")
    report.keys_before = newest.key_count
    report.keys_after = found.keys
    return report


# ---------------------------------------------------------------------- salvage
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
    with _exclusive(data_dir):
        source = data_dir / DATA_FILE
        fd = os.open(source, os.O_RDONLY)
        try:
            records, meta_lsn, page_size = _Salvager(fd, data_dir, report).run()
        finally:
            os.close(fd)
        first_wal = _wal_first_lsn(data_dir)
        if lsn is None:
            lsn = meta_lsn if meta_lsn is not None else 0
            if first_wal is not None and first_wal - 1 < lsn:
                lsn = first_wal - 1
        quarantine = new_quarantine(data_dir, "cow-salvage")
        os.link(source, quarantine / DATA_FILE)  # the damaged file, kept whole
        fsync_dir(quarantine)
        report.quarantine = str(quarantine)
        report.safety_copy = str(quarantine / DATA_FILE)
        report.quarantined.append(str(quarantine / DATA_FILE))
        build_file(source, sorted(records.items()), page_size=page_size, lsn=lsn)
    report.keys_after = len(records)
    report.actions.append(f"salvaged {len(records)} records into a new {DATA_FILE}; the damaged file is "
                          f"in {quarantine}")
    report.actions.append(f"the next open replays the WAL from LSN {lsn + 1}")
    report.ok = not report.lost
    return report


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
            slots: MetaSlots | None = _open_slots(self.data_dir, self.fd)
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
            report.lost.append("values come from the newest readable leaf page of each key: deleted keys may "
                               "be back and values may be older than the last writes before the damage")
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
            if len(page) == size and HEADER.unpack_from(page)[4] == 2 and HEADER.unpack_from(page)[5] == 0 \
                    and verify_checksum(page):
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
                self.report.lost.append(f"page {page} unreadable ({exc.message}): keys in "
                                        f"[{_show(low)}, {_show(high)}) come from older pages if any")
                continue
            if node.__class__.__name__ == "Leaf":
                self._take_leaf(file, meta.hwm, node.keys, node.values, page)  # type: ignore[union-attr]
                continue
            keys = node.keys
            for index in range(len(keys) - 1, -1, -1):
                stack.append((int(node.children[index]), keys[index] if index else low,  # type: ignore[union-attr, arg-type]
                              keys[index + 1] if index + 1 < len(keys) else high))
        return visited

    def _take_leaf(self, file: PageFile, hwm: int, keys: list[bytes], values: list[bytes | OverflowRef],
                   page: int) -> None:
        for key, value in zip(keys, values):
            if value.__class__ is OverflowRef:
                try:
                    value = file.read_overflow(value, hwm)  # type: ignore[arg-type]
                except CorruptionError as exc:
                    self.report.lost.append(f"key {_show(key)} (leaf page {page}): its value is unreadable "
                                            f"({exc.message})")
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
        for txid, page in sorted(found, reverse=True):
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
        if recovered:
            self.report.lost.append(f"{recovered} records were recovered from leaf pages outside the tree "
                                    f"(earlier commits): they may be older than the lost pages held")
        self.report.actions.append(f"searched {len(found)} leaf pages outside the tree for lost key ranges")

    def _in_lost_range(self, key: bytes) -> bool:
        return any((low is None or key >= low) and (high is None or key < high) for low, high in self.lost_ranges)


def _show(key: bytes | None) -> str:
    if key is None:
        return "-inf/+inf"
    return repr(key)


# ---------------------------------------------------------------------- snapshot
def rebuild_from_snapshot(data_dir: Path, snapshot: Path, *, allow_loss: bool = False) -> RepairReport:
    """Put ``snapshot`` (a snapshot, or ``data.cow`` from a backup) in place of ``data.cow``.

    The next open replays the WAL from the snapshot's LSN. Refuses a damaged snapshot, one of
    another page size, or (without ``allow_loss``) one older than the start of the WAL.
    """
    data_dir = Path(data_dir)
    snapshot = Path(snapshot)
    report = RepairReport(backend="cow")
    check = VerifyReport(backend="cow")
    verify_path(snapshot, check, name=str(snapshot))
    if not check.ok:
        raise SafetyRefusal(f"snapshot {snapshot} is damaged: {check.problems[0].detail}",
                            hint="choose another snapshot or backup")
    fd = os.open(snapshot, os.O_RDONLY)
    try:
        meta = read_meta_slots(fd, str(snapshot), None).newest
    finally:
        os.close(fd)
    marker = read_marker(data_dir)
    wanted = (marker.options.get("backend") or {}).get("page_size", DEFAULT_PAGE_SIZE) if marker else None
    if wanted is not None and wanted != meta.page_size:
        raise UnsupportedFormatError(f"snapshot {snapshot} has {meta.page_size}-byte pages, the data dir "
                                     f"{wanted}-byte pages")
    with _exclusive(data_dir) if (data_dir / DATA_FILE).exists() else _nothing():
        first_wal = _wal_first_lsn(data_dir)
        covered = first_wal is None or first_wal <= meta.lsn + 1
        if first_wal is not None and not covered and not allow_loss:
            raise SafetyRefusal(f"the snapshot holds LSN {meta.lsn} but the WAL starts at {first_wal}: "
                                f"LSNs {meta.lsn + 1}..{first_wal - 1} would be missing",
                                hint="replay them from the WAL archive, or pass allow_loss=True")
        target = data_dir / DATA_FILE
        if target.exists():
            quarantine = new_quarantine(data_dir, "cow-from-snapshot")
            os.link(target, quarantine / DATA_FILE)
            fsync_dir(quarantine)
            report.quarantine = str(quarantine)
            report.safety_copy = str(quarantine / DATA_FILE)
            report.quarantined.append(str(quarantine / DATA_FILE))
        temp = data_dir / f".{DATA_FILE}.from-snapshot"
        try:
            shutil.copyfile(snapshot, temp)
            with open(temp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(temp, target)
            fsync_dir(data_dir)
        finally:
            if temp.exists():
                temp.unlink()  # our own partial copy
    report.keys_after = meta.key_count
    report.actions.append(f"{DATA_FILE} replaced by {snapshot} (txid {meta.txid}, LSN {meta.lsn})")
    report.actions.append(f"the next open replays the WAL from LSN {meta.lsn + 1}")
    if first_wal is not None and not covered:
        report.lost.append(f"LSNs {meta.lsn + 1}..{first_wal - 1}: not in the WAL; replay them from the archive")
        report.ok = False
    return report


@contextmanager
def _nothing() -> Iterator[None]:
    yield


# ---------------------------------------------------------------------- the playbook's entry point
def repair(data_dir: Path) -> RepairReport:
    """Verify, then apply the least destructive remedy: freelist rebuild, rollback, or salvage."""
    data_dir = Path(data_dir)
    fd = os.open(data_dir / DATA_FILE, os.O_RDONLY) if (data_dir / DATA_FILE).exists() else None
    if fd is None:
        raise NotFoundError(f"{data_dir / DATA_FILE} does not exist", hint="is this a cow data dir?")
    try:
        try:
            slots = _open_slots(data_dir, fd)
        except PageCorruptionError:
            slots = None
        if slots is not None:
            file = PageFile(fd, data_dir / DATA_FILE, slots.page_size, writable=False, name=DATA_FILE)
            found = inspect(file, slots, slots.newest)
    finally:
        os.close(fd)
    if slots is None:
        return salvage(data_dir)
    if found.report.ok:
        report = RepairReport(backend="cow", keys_before=found.keys, keys_after=found.keys)
        report.actions.append(f"{DATA_FILE} verified clean: nothing to repair")
        return report
    if found.tree_intact and set(found.areas) <= _FREELIST_AREAS | {"meta"}:
        if set(found.areas) & _FREELIST_AREAS:
            return rebuild_freelist(data_dir)
        report = RepairReport(backend="cow", keys_before=found.keys, keys_after=found.keys)
        report.actions.append("only a meta page is bad; the next commit rewrites it")
        return report
    try:
        return rollback_to_older_meta(data_dir)
    except SafetyRefusal:
        return salvage(data_dir)
