"""The copy-on-write B+ tree backend: ``data.cow`` plus the shared WAL.

The WAL makes every write durable; writes then wait in the tree's write buffer. The tree is
committed (pages, fsync, meta, fsync) on flush, close and checkpoint, and a slice of the buffer
at a time whenever the buffer outgrows its budget (``commit.py``). The meta records the WAL LSN
up to which the tree holds everything, so an open replays only what comes after it. A commit
first makes the WAL durable up to the last LSN applied: the tree never gets ahead of the log.

Read-only opens never write a byte: the file is opened ``O_RDONLY`` and WAL records the tree does
not hold yet stay in the base class's overlay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from engines.base import WAL_DIR, Engine, Entry
from engines.cow.build import build_file
from engines.cow.commit import commit
from engines.cow.config import CowSettings
from engines.cow.meta import read_meta_slots
from engines.cow.page import DATA_FILE, PageCorruptionError
from engines.cow.scrub import cow_units
from engines.cow.snapshots import (
    SNAPSHOT_DIR,
    SnapshotInfo,
    SnapshotReader,
    copy_committed,
    default_name,
    list_snapshots,
    snapshot_path,
)
from engines.cow.store import open_tree
from engines.cow.tree import CowTree
from engines.cow.verify import verify_file, verify_path
from engines.errors import CorruptionError, InvalidArgumentError, ReadOnlyError
from engines.options import EngineOptions
from engines.reports import RepairReport, VerifyReport
from engines.scrub import ScrubUnit
from engines.wal import WalReader

__all__ = ["CowEngine"]

# Compaction rewrites the file when at least this share of its pages is free.
_COMPACT_FREE_SHARE = 0.25
# A commit takes this share of the buffered keys (consecutive ones), so it rewrites about that
# share of the tree, and the pages it frees (reusable two commits later) are no more than that.
_COMMIT_SLICES = 4
_MIN_COMMIT_KEYS = 2048


class CowEngine(Engine):
    backend = "cow"

    _tree: CowTree

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def _store_create(cls, path: Path, options: EngineOptions) -> None:
        settings = CowSettings.from_options(options)
        build_file(path / DATA_FILE, [], page_size=settings.page_size, lsn=0)
        (path / SNAPSHOT_DIR).mkdir(exist_ok=True)

    def _store_open(self) -> None:
        self._settings = CowSettings.from_options(self.options)
        # A page size named in the options must be the file's; otherwise the file's is used.
        self._tree, slots = open_tree(
            self.path / DATA_FILE,
            self._settings,
            writable=self.mode == "rw",
            name=DATA_FILE,
            check_page_size="page_size" in self.options.backend,
        )
        self._applied_lsn = self._tree.meta.lsn
        # The hot read paths go straight to the tree (one call less per read).
        self._store_get = self._tree.get  # type: ignore[method-assign]
        self._store_scan = self._tree.scan  # type: ignore[method-assign]
        # Why the newest meta was not used, when it was not (the open fell back to the older).
        self._meta_problems = dict(slots.problems)

    def _store_close(self) -> None:
        self._tree.close()

    # ------------------------------------------------------------------ data
    def _store_durable_lsn(self) -> int:
        return self._tree.meta.lsn

    def _store_apply(self, lsn: int, entries: Sequence[Entry]) -> None:
        tree = self._tree
        tree.apply(entries, lsn)
        self._applied_lsn = lsn
        if tree.buffer_bytes > self._settings.dirty_budget_bytes:
            commit(tree, lsn, self._sync_wal, chunk=self._chunk())

    def _store_get(self, key: bytes) -> bytes | None:
        return self._tree.get(key)

    def _store_scan(self, start: bytes | None, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        return self._tree.scan(start, end)

    def _store_flush(self) -> None:
        self._commit()

    def _commit(self) -> None:
        """Commit everything applied, a slice of the key space at a time (see ``commit``)."""
        tree = self._tree
        chunk = self._chunk()
        while len(tree.buffer) > chunk:
            commit(tree, self._applied_lsn, self._sync_wal, chunk=chunk)
        commit(tree, self._applied_lsn, self._sync_wal)

    def _chunk(self) -> int:
        return max(_MIN_COMMIT_KEYS, len(self._tree.buffer) // _COMMIT_SLICES)

    def _sync_wal(self) -> None:
        """Write-ahead: the log is durable up to the LSN before a meta claims it."""
        wal = self._wal
        if wal is not None and self._applied_lsn > wal.durable_lsn:
            wal.sync(self._applied_lsn)

    def _store_compact(self) -> None:
        """Rewrite the file packed and in key order when a quarter or more of it is free."""
        with self._write_lock:
            self._commit()
            tree = self._tree
            freelist = tree.freelist
            assert freelist is not None
            free = freelist.free_count + freelist.pending_count
            if tree.pins or free < _COMPACT_FREE_SHARE * tree.hwm:
                return
            meta = tree.meta
            path = self.path / DATA_FILE
            # Writers wait on the write lock; readers go on reading the old file meanwhile.
            build_file(
                path,
                tree.scan(None, None),
                page_size=tree.page_size,
                lsn=meta.lsn,
                max_keys_per_node=self._settings.max_keys_per_node,
                txid=meta.txid + 1,
            )
            fresh, _slots = open_tree(path, self._settings, writable=True, name=DATA_FILE)
            tree.adopt(fresh)

    # ------------------------------------------------------------------ reports
    def _store_stats(self) -> dict[str, Any]:
        tree = self._tree
        freelist = tree.freelist
        total = tree.live_key_count()
        for key, value in list(self._overlay.items()):  # read-only opens: WAL not yet in the tree
            present = tree.get(key) is not None
            total += (value is not None and not present) - (value is None and present)
        written = tree.file.bytes_written
        return {
            "total_keys": total,
            "memory_usage_bytes": tree.memory_bytes(),
            "page_size": tree.page_size,
            "pages": tree.hwm,
            "file_bytes": tree.file.size(),
            "free_pages": freelist.free_count if freelist is not None else None,
            "pending_pages": freelist.pending_count if freelist is not None else None,
            "txid": tree.meta.txid,
            "durable_lsn": tree.meta.lsn,
            "buffered_writes": len(tree.buffer),
            "buffer_bytes": tree.buffer_bytes,
            "cache_bytes": tree.cache.bytes,
            "cache_capacity_bytes": tree.cache.capacity,
            "cache_hits": tree.cache.hits,
            "cache_misses": tree.cache.misses,
            "commits": tree.commits,
            "bytes_written": written,
            "user_bytes_applied": tree.user_bytes,
            "write_amplification": round(written / tree.user_bytes, 3) if tree.user_bytes else None,
            "meta_fallback": (
                {str(slot): reason for slot, reason in self._meta_problems.items()} if self._meta_problems else None
            ),
            "low_memory": self.options.low_memory,
            "max_keys_per_node": self._settings.max_keys_per_node,
        }

    def _store_verify(self, report: VerifyReport) -> None:
        tree = self._tree
        with self._write_lock:  # no meta is being written while both are read
            try:
                slots = read_meta_slots(tree.file.fd, DATA_FILE, tree.page_size, allow_truncated=True)
            except PageCorruptionError as exc:
                report.add(exc.kind, f"{exc.message} (offset = page number)", file=DATA_FILE, offset=exc.page)
                return
            token, meta = tree.pin()
        try:
            verify_file(tree.file, slots, meta, report)
        finally:
            tree.unpin(token)

    @property
    def page_size(self) -> int:
        """Bytes per page of ``data.cow``: problems and page errors name pages, offset = page * page_size."""
        return self._tree.page_size

    def _store_scrub_units(self) -> list[ScrubUnit]:
        return cow_units(self.path, lambda: self._tree, self._write_lock)

    # ------------------------------------------------------------------ copies
    def _store_checkpoint(self, dest: Path) -> tuple[int, Callable[[], None] | None]:
        if self.mode == "rw":
            self._commit()
        token, meta = self._tree.pin()

        def finish() -> None:
            try:
                copy_committed(self._tree.file, meta, dest / DATA_FILE)
            finally:
                self._tree.unpin(token)

        return meta.lsn, finish

    def create_snapshot(self, name: str | None = None) -> SnapshotInfo:
        """Take a named point-in-time snapshot into ``snapshots/<name>.cow``; writes go on meanwhile.

        Raises:
            InvalidArgumentError: a bad or existing name, or snapshots are off (low-memory profile).
            ReadOnlyError: the engine is open read-only.
        """
        self._check_open()
        if self.mode != "rw":
            raise ReadOnlyError(f"{self.path} is open read-only: a snapshot writes a file into it")
        if not self._settings.snapshots:
            raise InvalidArgumentError(
                "snapshots are off for this data dir (the low-memory profile)",
                hint="use checkpoint(dest) for a copy outside the data dir",
            )
        name = default_name() if name is None else name
        target = snapshot_path(self.path, name)
        if target.exists():
            raise InvalidArgumentError(f"snapshot {name!r} already exists", hint="choose another name")
        target.parent.mkdir(exist_ok=True)
        with self._write_lock:
            self._commit()
            token, meta = self._tree.pin()
        try:
            size = copy_committed(self._tree.file, meta, target)
        finally:
            self._tree.unpin(token)
        return SnapshotInfo(name, str(target), meta.lsn, meta.txid, meta.key_count, size, target.stat().st_mtime)

    def list_snapshots(self) -> list[SnapshotInfo]:
        self._check_open()
        return list_snapshots(self.path)

    def open_snapshot(self, name: str) -> SnapshotReader:
        """A read-only view of snapshot ``name`` (``get``/``scan``); close it after use."""
        self._check_open()
        return SnapshotReader(snapshot_path(self.path, name))

    # ------------------------------------------------------------------ memory
    def set_cache_bytes(self, capacity: int) -> None:
        """Resize the page cache now (the guide's ``reduce-cache``); not saved in the marker."""
        if capacity < 0:
            raise InvalidArgumentError("the cache size cannot be negative")
        with self._tree.lock:
            self._tree.cache.resize(capacity)

    def clear_cache(self) -> None:
        """Drop every cached page (the guide's ``clear-cache``)."""
        with self._tree.lock:
            self._tree.cache.clear()

    # ------------------------------------------------------------------ repair
    @classmethod
    def verify_unopenable(cls, path: Path, error: CorruptionError) -> VerifyReport:
        """Check ``data.cow`` (both metas, or what a truncated file still holds) and the WAL, reading only."""
        report = VerifyReport(backend=cls.backend)
        verify_path(Path(path) / DATA_FILE, report, name=DATA_FILE)
        if report.ok:  # the file checks out now: report why the open failed
            report.add("open", f"cannot open: {error.message}", file=error.file, offset=error.offset)
        validation = WalReader(Path(path) / WAL_DIR).validate()
        report.count("wal_records", validation.records)
        report.count("wal_segments", validation.segments)
        if validation.corruption is not None:
            problem = validation.corruption
            report.add("wal", problem.reason, file=f"{WAL_DIR}/{problem.segment}", offset=problem.offset)
        return report

    @classmethod
    def repair(cls, path: Path) -> RepairReport:
        """Best-effort repair of a closed data dir (``engines.cow.repair.repair``), ending with one open.

        Rollback and salvage leave what the WAL still holds to the next open; opening here makes
        the report's key count and recovered LSNs those of the data dir the next user sees.
        """
        import os

        from engines.cow.repair import repair
        from engines.repair_replay import replay_after_repair

        report = repair(Path(path))
        if report.ok and (report.safety_copy or report.quarantine):  # something was changed
            fd = os.open(Path(path) / DATA_FILE, os.O_RDONLY)
            try:
                store_lsn = read_meta_slots(fd, DATA_FILE, None).newest.lsn
            finally:
                os.close(fd)
            replay_after_repair(Path(path), cls.backend, report, replay_from=store_lsn)
        return report
