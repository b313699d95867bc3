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

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engines import fsio
from engines.cow.freelist import Freelist
from engines.cow.meta import Meta, read_meta_slots
from engines.cow.node import make_run, stamp
from engines.cow.offline import exclusive, open_slots, safety_copy, wal_first_lsn
from engines.cow.page import DATA_FILE, DEFAULT_PAGE_SIZE, HEADER, HEADER_SIZE, PageCorruptionError, PageType, pages_for
from engines.cow.pagefile import PageFile
from engines.cow.salvage import salvage
from engines.cow.verify import inspect, verify_path
from engines.errors import NotFoundError, SafetyRefusal, UnsupportedFormatError
from engines.fsutil import fsync_dir, new_quarantine
from engines.marker import read_marker
from engines.reports import RepairReport, VerifyReport

__all__ = ["rebuild_freelist", "rebuild_from_snapshot", "repair", "rollback_to_older_meta", "salvage"]

# Verify problems that a freelist rebuild mends (the tree itself is sound).
_FREELIST_AREAS = {"freelist", "space"}


def _write_state(
    fd: int, page_size: int, keep: Meta, *, txid: int, slot: int, free: list[int], pending: list[int], key_count: int
) -> Meta:
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
    file.sync(site="cow.repair.pages")
    meta = Meta(txid, keep.root, first, first + span, keep.lsn, key_count, page_size, slot)
    file.write_meta(meta)
    file.sync(site="cow.repair.meta")
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
    with exclusive(data_dir):
        fd = os.open(data_dir / DATA_FILE, os.O_RDWR)
        try:
            slots = open_slots(data_dir, fd)
            older = slots.older
            if older is None or older.txid >= slots.newest.txid:
                raise SafetyRefusal(
                    f"{DATA_FILE} has no older meta to roll back to (valid metas: {[m.slot for m in slots.metas]})",
                    hint="salvage the readable records instead",
                )
            newest = slots.newest
            file = PageFile(fd, data_dir / DATA_FILE, slots.page_size, writable=True, name=DATA_FILE)
            found = inspect(file, slots, older)
            if not found.tree_intact:
                problems = "; ".join(p.detail for p in found.report.problems[:3])
                raise SafetyRefusal(
                    f"the older meta's tree (txid {older.txid}) is damaged too: {problems}",
                    hint="salvage the readable records instead",
                )
            first_wal = wal_first_lsn(data_dir)
            covered = first_wal is not None and first_wal <= older.lsn + 1 or newest.lsn == older.lsn
            if not covered and not allow_loss:
                raise SafetyRefusal(
                    f"rolling back to LSN {older.lsn} would lose LSNs {older.lsn + 1}..{newest.lsn}: "
                    f"the WAL starts at {first_wal}",
                    hint="restore the WAL from the archive first, "
                    "or pass allow_loss=True and replay the archive afterwards",
                )
            safety_copy(data_dir, "cow-rollback", report)
            reachable = found.reachable
            free = [page for page in range(2, older.hwm) if not reachable[page]]
            pending = []
            if older.freelist:  # the fallback meta (older, left in place) still points at it
                span = HEADER.unpack_from(os.pread(fd, HEADER_SIZE, older.freelist * slots.page_size))[5] + 1
                pending = list(range(older.freelist, older.freelist + span))
                keep = set(pending)
                free = [page for page in free if page not in keep]
            meta = _write_state(
                fd,
                slots.page_size,
                older,
                txid=newest.txid + 1,
                slot=newest.slot,
                free=free,
                pending=pending,
                key_count=found.keys,
            )
        finally:
            os.close(fd)
    report.actions.append(
        f"rolled back from txid {newest.txid} (LSN {newest.lsn}) to the tree of txid "
        f"{older.txid} (LSN {older.lsn}), now committed as txid {meta.txid}"
    )
    if covered:
        report.actions.append(f"the next open replays the WAL from LSN {older.lsn + 1}")
    else:
        report.lost.append(
            f"LSNs {older.lsn + 1}..{newest.lsn}: not in the WAL (it starts at {first_wal}); "
            f"replay them from the WAL archive"
        )
        report.ok = False
    report.keys_after = found.keys
    return report


# ---------------------------------------------------------------------- freelist
def rebuild_freelist(data_dir: Path) -> RepairReport:
    """Recount free pages and keys from the tree of the newest meta (which must be sound)."""
    data_dir = Path(data_dir)
    report = RepairReport(backend="cow")
    with exclusive(data_dir):
        fd = os.open(data_dir / DATA_FILE, os.O_RDWR)
        try:
            slots = open_slots(data_dir, fd)
            newest = slots.newest
            file = PageFile(fd, data_dir / DATA_FILE, slots.page_size, writable=True, name=DATA_FILE)
            found = inspect(file, slots, newest)
            if not found.tree_intact:
                raise SafetyRefusal(
                    "the tree itself is damaged; rebuilding the freelist would not help",
                    hint="roll back to the older meta or salvage",
                )
            safety_copy(data_dir, "cow-freelist", report)
            pending: list[int] = []
            if newest.freelist:  # newest stays as the fallback: keep its freelist run untouched
                head = os.pread(fd, HEADER_SIZE, newest.freelist * slots.page_size)
                span = HEADER.unpack_from(head)[5] + 1 if len(head) == HEADER_SIZE else 1
                span = max(1, min(span, newest.hwm - newest.freelist))
                pending = list(range(newest.freelist, newest.freelist + span))
            reachable = found.reachable
            keep = set(pending)
            free = [page for page in range(2, newest.hwm) if not reachable[page] and page not in keep]
            meta = _write_state(
                fd,
                slots.page_size,
                newest,
                txid=newest.txid + 1,
                slot=1 - newest.slot,
                free=free,
                pending=pending,
                key_count=found.keys,
            )
        finally:
            os.close(fd)
    report.actions.append(
        f"rebuilt the freelist ({len(free)} free pages) and key count ({found.keys}) as txid {meta.txid}"
    )
    report.keys_before = newest.key_count
    report.keys_after = found.keys
    return report


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
        raise SafetyRefusal(
            f"snapshot {snapshot} is damaged: {check.problems[0].detail}", hint="choose another snapshot or backup"
        )
    fd = os.open(snapshot, os.O_RDONLY)
    try:
        meta = read_meta_slots(fd, str(snapshot), None).newest
    finally:
        os.close(fd)
    marker = read_marker(data_dir)
    wanted = (marker.options.get("backend") or {}).get("page_size", DEFAULT_PAGE_SIZE) if marker else None
    if wanted is not None and wanted != meta.page_size:
        raise UnsupportedFormatError(
            f"snapshot {snapshot} has {meta.page_size}-byte pages, the data dir {wanted}-byte pages"
        )
    with exclusive(data_dir) if (data_dir / DATA_FILE).exists() else _nothing():
        first_wal = wal_first_lsn(data_dir)
        covered = first_wal is None or first_wal <= meta.lsn + 1
        if first_wal is not None and not covered and not allow_loss:
            raise SafetyRefusal(
                f"the snapshot holds LSN {meta.lsn} but the WAL starts at {first_wal}: "
                f"LSNs {meta.lsn + 1}..{first_wal - 1} would be missing",
                hint="replay them from the WAL archive, or pass allow_loss=True",
            )
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
                fsio.fsync(handle.fileno())
            fsio.replace(temp, target)
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
            slots = open_slots(data_dir, fd)
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
