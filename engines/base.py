"""The engine contract and the mechanism every backend shares.

``Engine`` owns what is the same on all three backends, so that no backend repeats it: the data
dir lock, the ``drconsole.json`` marker, the shared WAL (LSN assignment, group commit, replay on
open, segment recycling once the store covers them), key validation, read-only enforcement,
fencing, prefix scans, checkpoints and the WAL half of ``verify``. A backend implements the
``_store_*`` hooks: how its own files hold the keys.

Write path: under the write lock a write gets its LSN from the WAL and is applied to the store, so
the store sees writes in LSN order; then, outside the lock, ``sync`` durability waits for the WAL
fsync that covers it (one fsync serves every writer waiting at that moment).

Recovery: on open the store reports the highest LSN it holds durably (``_store_durable_lsn``);
WAL records after it are replayed. In read-only mode nothing may be written, so they go into an
in-memory overlay that reads consult first.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import shutil
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

from engines import fsio
from engines.archiving import ArchiveKeeper, inspect_archive, record_repository
from engines.errors import (
    ClosedError,
    CorruptionError,
    EngineError,
    FencedError,
    InvalidArgumentError,
    NotFoundError,
    ReadOnlyError,
    StorageIOError,
    WalCorruptionError,
    map_os_error,
)
from engines.fsutil import QUARANTINE_DIR, fsync_dir, new_quarantine, tree_size
from engines.locking import LOCK_NAME, acquire_data_dir_lock
from engines.marker import Marker, read_marker, write_marker
from engines.options import EngineOptions
from engines.reports import EngineStats, VerifyReport
from engines.scrub import ScrubUnit, wal_units
from engines.wal import (
    Op,
    RecoveryMode,
    SegmentInfo,
    WalReader,
    WalWriter,
    archive_status,
    list_segments,
    truncate_at_first_bad,
)
from engines.wal.files import check_ends_cleanly

__all__ = ["Engine", "Entry", "LOCK_NAME", "MAX_KEY_BYTES", "MAX_VALUE_BYTES", "WAL_DIR", "prefix_end"]

Entry = tuple[bytes, bytes | None]  # (key, value); None deletes
MAX_KEY_BYTES = 1024
MAX_VALUE_BYTES = 64 * 2**20
WAL_DIR = "wal"


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: no bound)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def _check_key(key: object) -> bytes:
    if type(key) is bytes and 0 < len(key) <= MAX_KEY_BYTES:
        return key  # the common case, checked first: this runs on every read and write
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise InvalidArgumentError(
            f"keys are bytes, got {type(key).__name__}", hint="encode text keys, e.g. key.encode('utf-8')"
        )
    key = bytes(key)
    if not key:
        raise InvalidArgumentError("empty keys are not allowed")
    if len(key) > MAX_KEY_BYTES:
        raise InvalidArgumentError(f"key of {len(key)} bytes exceeds the {MAX_KEY_BYTES}-byte limit")
    return key


def _check_value(value: object) -> bytes:
    if type(value) is bytes and len(value) <= MAX_VALUE_BYTES:
        return value
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise InvalidArgumentError(f"values are bytes, got {type(value).__name__}")
    value = bytes(value)
    if len(value) > MAX_VALUE_BYTES:
        raise InvalidArgumentError(f"value of {len(value)} bytes exceeds the {MAX_VALUE_BYTES}-byte limit")
    return value


class Engine(ABC):
    """One open data directory. Use ``engines.create_engine`` / ``engines.open_engine``."""

    backend: ClassVar[str]
    # True when the store may persist a write on its own schedule (RocksDB's background flushes):
    # then the WAL record must reach the OS before the store can persist the write, so a killed
    # process never leaves the store ahead of the log (see ``_wal_needed_before_apply``).
    wal_before_apply: ClassVar[bool] = False

    def __init__(self, path: Path, *, mode: str = "rw", options: EngineOptions | None = None) -> None:
        if mode not in ("rw", "ro"):
            raise InvalidArgumentError(f"mode must be 'rw' or 'ro', not {mode!r}")
        self.path = Path(path)
        self.mode = mode
        marker = read_marker(self.path)
        self.marker = marker or Marker(backend=self.backend)
        self.options = options or EngineOptions.of_marker(self.marker, self.path)
        self._closed = False
        self._fenced = False
        self._write_lock = threading.RLock()
        self._overlay: dict[bytes, bytes | None] = {}
        self._overlay_keys: list[bytes] = []
        self._lock_fd: int | None = None
        self._wal: WalWriter | None = None
        self._last_lsn = 0
        self._recycled_upto = 0
        self._sync = self.options.durability == "sync"
        self._checkpoint_every = self.options.checkpoint_every_records
        # Archive before recycle (engines/archiving.py): a data dir that records a backup
        # repository keeps every sealed segment until it is in that repository's WAL archive.
        self.archiving = ArchiveKeeper(
            self.path,
            self.wal_dir,
            self.marker.archive if mode == "rw" else None,
            self.options.wal_hold_max_bytes,
            retry=self.archive_now,
        )
        # Called with a corruption met by background work no caller sees (an LSM compaction), and
        # what found it ("compaction"): a node turns it into its ``corrupt`` health state.
        self.corruption_hook: Callable[[CorruptionError, str], None] | None = None
        store_open = False
        try:
            self._acquire_lock()
            self._store_open()
            store_open = True
            self._recover()
        except BaseException:
            # A failed recovery must not leave the store open behind the caller's back: RocksDB
            # would keep its LOCK (a repair in this process could not open it) and a read-only
            # open its shadow directory. Nothing of ours is written: no flush, no WAL recycling.
            if self._wal is not None:
                with contextlib.suppress(Exception):
                    self._wal.close()
            if store_open:
                with contextlib.suppress(Exception):
                    self._store_abandon()
            self._release()
            raise

    # ------------------------------------------------------------------ public contract
    @property
    def last_lsn(self) -> int:
        """The LSN of the newest write applied (and, in rw mode, logged)."""
        return self._last_lsn

    @property
    def durable_lsn(self) -> int:
        """The highest LSN the store holds on its own, without replaying the WAL."""
        return self._store_durable_lsn()

    @property
    def wal_dir(self) -> Path:
        return self.path / WAL_DIR

    @property
    def epoch(self) -> int:
        return self.marker.epoch

    @property
    def open_segment_started_ns(self) -> int | None:
        """When the WAL segment being written got its first record (None: none is open)."""
        return None if self._wal is None else self._wal.segment_started_ns

    @property
    def archive_error(self) -> str | None:
        """Why the WAL is not reaching the archive (the last failure, a copy, the ceiling); None when it is."""
        state = self.archiving.state(None)
        return None if state is None or state.state in ("ok", "pending", "standby") else state.error

    def put(self, key: bytes, value: bytes) -> int:
        """Store ``value`` under ``key``; returns the write's LSN once it is as durable as promised."""
        return self._write(Op.PUT, [(_check_key(key), _check_value(value))])

    def delete(self, key: bytes) -> int:
        return self._write(Op.DELETE, [(_check_key(key), None)])

    def write_batch(self, entries: Iterable[Entry]) -> int:
        """Apply ``entries`` atomically (all or none survive a crash); ``None`` values delete."""
        checked = [(_check_key(k), None if v is None else _check_value(v)) for k, v in entries]
        if not checked:
            raise InvalidArgumentError("empty write batch")
        return self._write(Op.BATCH, checked)

    def get(self, key: bytes) -> bytes | None:
        if self._closed:
            self._check_open()
        if type(key) is not bytes or not 0 < len(key) <= MAX_KEY_BYTES:
            key = _check_key(key)  # inlined fast path above: get is the hottest call there is
        if self._overlay and key in self._overlay:
            return self._overlay[key]
        try:
            return self._store_get(key)
        except EngineError:
            raise
        except Exception as exc:  # a backend may bind a third-party call here directly: map it
            raise self._map_store_error(exc, f"reading from {self.path}") from exc

    def scan(
        self, start: bytes | None = None, end: bytes | None = None, *, prefix: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Live keys in order, ``start`` inclusive, ``end`` exclusive, optionally under ``prefix``."""
        self._check_open()
        if prefix is not None:
            prefix = bytes(prefix)
            start = prefix if start is None or start < prefix else start
            bound = prefix_end(prefix)
            if bound is not None and (end is None or bound < end):
                end = bound
        if start is not None and end is not None and start >= end:
            return iter(())
        rows = self._store_scan(start, end)
        if not self._overlay:
            return rows
        return self._merge_overlay(rows, start, end)

    def flush(self) -> None:
        """Make the store durable on its own, then recycle the WAL segments it covers."""
        self._check_writable()
        with self._write_lock:
            if self._wal is not None:
                self._wal.flush()  # the log reaches the OS before the store persists anything
            self._store_flush()
        self._recycle_wal()

    def compact(self) -> None:
        self._check_writable()
        self._store_compact()

    def stats(self) -> EngineStats:
        self._check_open()
        details = self._store_stats()
        total_keys = int(details.pop("total_keys", 0))
        memory = int(details.pop("memory_usage_bytes", 0))
        return EngineStats(
            backend=self.backend,
            total_keys=total_keys,
            disk_usage_bytes=tree_size(self.path) - tree_size(self.path / QUARANTINE_DIR),
            memory_usage_bytes=memory,
            wal_bytes=tree_size(self.wal_dir),
            last_lsn=self._last_lsn,
            details=details,
            archive=self.archive_state(),
        )

    def archive_state(self) -> Any:
        """The WAL archiving of this data dir (``ArchiveState``), or None when it records no repository."""
        if self.mode == "ro":
            return inspect_archive(self.path)  # read from the files: a read-only open archives nothing
        if self.archiving.record is None:
            return None
        with self._write_lock:
            sealed, _end = self._sealed_segments()
        self.archiving.refresh(sealed)
        return self.archiving.state(self._wal.segment_started_ns if self._wal is not None else None)

    def archive_now(self, *, seal: bool = False) -> int:
        """Archive every sealed segment not archived yet (``seal``: seal the open one first).

        What a node's archive timer calls; any read-write open does it when it flushes or closes.
        Returns how many segments went into the archive; failures are in ``archive_state()``.
        """
        if self.mode != "rw" or self._wal is None or self._closed:
            return 0
        with self._write_lock:
            if seal:
                self._wal.seal()
            sealed, end_lsn = self._sealed_segments()
            observed = (time.time_ns(), self._last_lsn)
        return self.archiving.archive(sealed, end_lsn, observed=observed if seal else None)

    def sealed_segments(self, *, seal: bool = False) -> tuple[list[SegmentInfo], int]:
        """The sealed WAL segments and the last LSN written (``seal``: seal the open segment first)."""
        self._check_open()
        if self._wal is None:
            return list_segments(self.wal_dir), self._last_lsn
        with self._write_lock:
            if seal:
                self._wal.seal()
            sealed, _end = self._sealed_segments()
            return sealed, self._last_lsn

    def record_archive(self, repo: Path | str, done: Iterable[str] = ()) -> bool:
        """Record ``repo`` as the backup repository this data dir archives its WAL into.

        See ``engines.archiving.record_repository`` for ``done``. Returns whether the record changed.
        """
        self._check_writable(allow_fenced=True)
        with self._write_lock:
            record = record_repository(self.path, self.wal_dir, self.marker, repo, done)
            if record is not None:
                self.archiving.adopt(record)
        return record is not None

    def suspend_archiving(self, reason: str) -> None:
        """Neither archive nor hold WAL in this process (a standby: its WAL is the primary's)."""
        self.archiving.suspend(reason)

    def verify(self) -> VerifyReport:
        """Check every checksum and invariant of the store and the WAL. Changes nothing."""
        self._check_open()
        report = VerifyReport(backend=self.backend)
        self._store_verify(report)
        self._verify_wal(report)
        return report

    def scrub_units(self) -> list[ScrubUnit]:
        """The files a background scrub checks, one unit each (``engines.scrub``): the store's
        own files and the sealed WAL segments. Reading them changes nothing."""
        self._check_open()
        return [*self._store_scrub_units(), *wal_units(self.wal_dir)]

    def checkpoint(self, dest: Path) -> int:
        """Write a consistent, openable copy of this data dir to ``dest``; returns the LSN it holds.

        The store part is taken under the write lock (backends keep that short: hard links, a
        pinned meta); the WAL is then copied up to the same point while writes go on.
        """
        self._check_open()
        dest = Path(dest)
        if dest.exists():
            raise InvalidArgumentError(f"checkpoint target {dest} already exists")
        staging = dest.with_name(f".{dest.name}.partial")
        if staging.exists():
            shutil.rmtree(staging)  # our own leftover from an interrupted checkpoint
        staging.mkdir(parents=True)
        try:
            finish = None
            try:
                with self._write_lock:
                    if self._wal is not None:
                        self._wal.flush()
                    lsn, finish = self._store_checkpoint(staging)
                    current = self._wal.current_segment() if self._wal is not None else None
                    segments = list_segments(self.wal_dir)
            finally:
                # The finisher also releases what the store pinned (cow: the meta's pages), so it
                # runs even when something above failed.
                if finish is not None:
                    finish()
            (staging / WAL_DIR).mkdir()
            # Segments wholly at or below ``lsn`` are covered by the copied store: leave them out.
            needed = [
                segment
                for index, segment in enumerate(segments)
                if index + 1 >= len(segments) or segments[index + 1].first_lsn - 1 > lsn
            ]
            for segment in needed:
                limit = current[1] if current is not None and segment.path == current[0] else None
                _copy_prefix(segment.path, staging / WAL_DIR / segment.path.name, limit)
            fsync_dir(staging / WAL_DIR)
            # A copy is a new data dir: it must not archive into this one's repository (its
            # history forks from here), so it records none until a backup records one for it.
            # write_marker's atomic write fsyncs ``staging`` itself, which makes every entry made
            # in it so far (the store, wal/) durable: no second directory fsync is needed here.
            write_marker(staging, self.marker.model_copy(update={"archive": None}))
            fsio.rename(staging, dest)
            fsync_dir(dest.parent)
        except OSError as exc:
            raise map_os_error(exc, f"writing checkpoint {dest}") from exc
        finally:
            if staging.exists():
                shutil.rmtree(staging)  # our own partial copy; the source is untouched
        return lsn

    def fence(self, reason: str = "fenced") -> None:
        """Refuse every later write (a higher epoch exists elsewhere)."""
        self._fenced = True
        self._fence_reason = reason

    def close(self) -> None:
        if self._closed:
            return
        try:
            if self.mode == "rw":
                with self._write_lock:
                    if self._wal is not None:
                        self._wal.close()
                    self._store_flush()
                    closed_at = time.time_ns()  # no write can follow: the log ends here
                self._recycle_wal(observed=(closed_at, self._last_lsn))
            self._store_close()
        finally:
            self._release()
            self._closed = True

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ hooks for backends
    @classmethod
    def verify_unopenable(cls, path: Path, error: CorruptionError) -> VerifyReport:
        """The verify report of a data dir that failed to open with ``error``.

        The default reports the failure itself; a backend that can check its files without
        opening (lsm: every table, the manifest, the WAL) overrides this to say more.
        """
        report = VerifyReport(backend=cls.backend)
        report.add("open", f"cannot open: {error.message}", file=error.file, offset=error.offset)
        return report

    @classmethod
    @abstractmethod
    def _store_create(cls, path: Path, options: EngineOptions) -> None:
        """Lay out a new, empty store in ``path`` (the marker is already written)."""

    @abstractmethod
    def _store_open(self) -> None:
        """Open the store files (read-only when ``self.mode == 'ro'``: write nothing)."""

    @abstractmethod
    def _store_durable_lsn(self) -> int:
        """The highest LSN whose effect the store holds durably without the WAL."""

    @abstractmethod
    def _store_apply(self, lsn: int, entries: Sequence[Entry]) -> None:
        """Apply one logged write (atomically, for a batch). Called under the write lock, in LSN order."""

    @abstractmethod
    def _store_get(self, key: bytes) -> bytes | None: ...

    @abstractmethod
    def _store_scan(self, start: bytes | None, end: bytes | None) -> Iterator[tuple[bytes, bytes]]: ...

    @abstractmethod
    def _store_flush(self) -> None:
        """Persist everything applied so far so that ``_store_durable_lsn() == last_lsn``."""

    def _store_compact(self) -> None:  # noqa: B027 - an optional hook, not abstract: most stores have nothing to do
        """Reclaim space; default: nothing to do."""

    @abstractmethod
    def _store_stats(self) -> dict[str, Any]:
        """Backend figures; must include ``total_keys`` and ``memory_usage_bytes``."""

    @abstractmethod
    def _store_verify(self, report: VerifyReport) -> None:
        """Add every store problem to ``report``; must not write."""

    def _store_scrub_units(self) -> list[ScrubUnit]:
        """One ``ScrubUnit`` per store file (see ``engines.scrub``); none by default."""
        return []

    @abstractmethod
    def _store_checkpoint(self, dest: Path) -> tuple[int, Callable[[], None] | None]:
        """Under the write lock: put a consistent copy of the store into ``dest``.

        Returns the LSN the copy holds exactly and, optionally, a function that finishes the copy
        after the lock is released (for copying pinned pages while writes go on).
        """

    def _store_abandon(self) -> None:
        """Release what the store holds after an open that failed in recovery, writing nothing if it can.

        By default the plain close; a backend whose close tidies files (lsm purges retired tables)
        overrides it, so a failed open leaves the files as it found them.
        """
        self._store_close()

    @abstractmethod
    def _store_close(self) -> None: ...

    # ------------------------------------------------------------------ shared mechanism
    def _write(self, op: Op, entries: list[Entry]) -> int:
        wal = self._wal
        if wal is None or self._fenced or self._closed:
            self._check_writable()
        assert wal is not None
        if self.archiving.refusal is not None:
            self.archiving.check_writable()  # the WAL held for the archive reached its ceiling
        with self._write_lock:
            if op is Op.BATCH:
                lsn = wal.append_batch(entries)
            else:
                key, value = entries[0]
                lsn = wal.append(op, key, value or b"")
            if self.wal_before_apply and self._wal_needed_before_apply(entries):
                wal.flush()
            self._store_apply(lsn, entries)
            self._last_lsn = lsn
        if self._sync:
            wal.sync(lsn)
        self._after_write()
        return lsn

    def _map_store_error(self, exc: Exception, what: str) -> EngineError:
        """The engine error for a third-party exception raised by the store while doing ``what``."""
        if isinstance(exc, OSError):
            return map_os_error(exc, what)
        return StorageIOError(f"{what}: {exc}")

    def _wal_needed_before_apply(self, entries: Sequence[Entry]) -> bool:
        """With ``wal_before_apply``: whether this write's record must reach the OS first.

        The default says always; a backend that can tell when the store might persist on its
        own (RocksDB: only at a memtable switch) says so only then.
        """
        return True

    def _after_write(self) -> None:
        """Checkpoint the tree and recycle WAL once enough WAL has accumulated."""
        if self._last_lsn - self._recycled_upto >= self._checkpoint_every:
            self._recycled_upto = self._last_lsn  # claim it first: one thread checkpoints
            self.flush()

    def apply_replicated(self, records: Iterable[Any]) -> int:
        """Apply WAL records shipped from a primary or an archive, keeping their LSNs."""
        self._check_writable(allow_fenced=True)
        wal = self._wal
        assert wal is not None
        last = self._last_lsn
        with self._write_lock:
            for record in records:
                if record.lsn <= self._last_lsn:
                    continue
                wal.append_record(record)
                self._store_apply(record.lsn, record.entries())
                self._last_lsn = last = record.lsn
        wal.sync(last)
        return last

    def _recover(self) -> None:
        durable = self._store_durable_lsn()
        reader = WalReader(self.wal_dir)
        last = durable
        if self.mode == "rw":
            self._truncate_torn_tail()
        for record in reader.records(from_lsn=durable + 1, mode=RecoveryMode(self.options.wal_recovery)):
            if last == durable and record.lsn != durable + 1:
                raise CorruptionError(
                    f"the WAL resumes at LSN {record.lsn} but the store holds only up to {durable}: "
                    f"LSNs {durable + 1}..{record.lsn - 1} are missing",
                    file=f"{WAL_DIR}/{record.segment}",
                    offset=record.offset,
                    hint="restore the missing WAL segments from the archive, or restore a backup",
                )
            if self.mode == "rw":
                self._store_apply(record.lsn, record.entries())
            else:
                for key, value in record.entries():
                    self._overlay[key] = value
            last = record.lsn
        if self._overlay:
            self._overlay_keys = sorted(self._overlay)
        self._last_lsn = last
        self._recycled_upto = durable
        if self.mode == "rw":
            self._wal = WalWriter(
                self.wal_dir,
                next_lsn=last + 1,
                durability=self.options.durability,
                segment_bytes=self.options.wal_segment_bytes,
                async_interval_ms=self.options.async_interval_ms,
                buffer_bytes=self.options.wal_buffer_bytes,
                on_seal=self.archiving.note_sealed,
            )

    def _truncate_torn_tail(self) -> None:
        """A torn record at the very end of the WAL (a crash mid-append) goes to quarantine.

        Only in the tolerant mode, and only what that mode tolerates: damage in the last segment
        with no sound record after it. Anything else is left for the replay to raise, so that a
        human decides (``wal truncate``). Reads the last segment only.
        """
        if RecoveryMode(self.options.wal_recovery) is not RecoveryMode.TOLERATE_CORRUPTED_TAIL:
            return
        segments = list_segments(self.wal_dir)
        if not segments:
            return
        try:
            check_ends_cleanly(segments[-1])
            return
        except WalCorruptionError:
            pass
        reader = WalReader(self.wal_dir)
        try:
            for _record in reader.records(from_lsn=segments[-1].first_lsn, mode=RecoveryMode.TOLERATE_CORRUPTED_TAIL):
                pass
        except WalCorruptionError:
            return  # damage the tolerant mode does not accept: the replay reports it
        if reader.tolerated_tail is not None:
            truncate_at_first_bad(self.wal_dir, new_quarantine(self.path, "wal-torn-tail"))

    def _sealed_segments(self) -> tuple[list[SegmentInfo], int]:
        """The sealed segments and the last LSN they can hold (call with the write lock held).

        Under the lock no append can seal a segment or open one, so the open segment is told apart
        exactly: a segment still being written must never reach the archive.
        """
        assert self._wal is not None
        current = self._wal.current_segment()
        segments = list_segments(self.wal_dir)
        if current is None:
            return segments, self._wal.next_lsn - 1
        sealed = [segment for segment in segments if segment.path != current[0]]
        return sealed, int(current[0].name[:20]) - 1

    def _recycle_wal(self, observed: tuple[int, int] | None = None) -> None:
        """Retire sealed segments the store covers, keeping the newest few for standbys.

        With a backup repository recorded, each is archived first (``engines/archiving.py``); one
        that cannot be stops the recycling there and stays, with every later one.
        """
        if self.mode != "rw" or self._wal is None:
            return
        covered = self._store_durable_lsn()
        self._recycled_upto = max(self._recycled_upto, covered)
        with self._write_lock:
            sealed, end_lsn = self._sealed_segments()
        self.archiving.archive(sealed, end_lsn, observed=observed)
        statuses = archive_status.statuses(self.wal_dir) if self.archiving.keeps else {}
        retire = []
        for index, segment in enumerate(sealed):
            following = sealed[index + 1].first_lsn if index + 1 < len(sealed) else end_lsn + 1
            if following - 1 <= covered:
                retire.append(segment)
        retire = retire[: max(0, len(retire) - self.options.wal_keep_segments)]
        removed = False
        for segment in retire:
            if not self.archiving.recyclable(segment, statuses):
                break  # not in the archive yet: it stays, and so does every later one
            segment.path.unlink()  # covered by the store, and archived when a repository is recorded
            self.archiving.forget(segment)
            removed = True
        if removed:
            fsync_dir(self.wal_dir)

    def _merge_overlay(
        self, rows: Iterator[tuple[bytes, bytes]], start: bytes | None, end: bytes | None
    ) -> Iterator[tuple[bytes, bytes]]:
        keys = self._overlay_keys
        low = 0 if start is None else bisect.bisect_left(keys, start)
        high = len(keys) if end is None else bisect.bisect_left(keys, end)
        pending = keys[low:high]
        index = 0
        for key, value in rows:
            while index < len(pending) and pending[index] < key:
                overlay_value = self._overlay[pending[index]]
                if overlay_value is not None:
                    yield pending[index], overlay_value
                index += 1
            if index < len(pending) and pending[index] == key:
                overlay_value = self._overlay[key]
                index += 1
                if overlay_value is not None:
                    yield key, overlay_value
                continue
            yield key, value
        for key in pending[index:]:
            overlay_value = self._overlay[key]
            if overlay_value is not None:
                yield key, overlay_value

    def _verify_wal(self, report: VerifyReport) -> None:
        validation = WalReader(self.wal_dir).validate()
        report.count("wal_records", validation.records)
        report.count("wal_segments", validation.segments)
        if validation.corruption is not None:
            problem = validation.corruption
            report.add("wal", problem.reason, file=f"{WAL_DIR}/{problem.segment}", offset=problem.offset)

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"engine {self.path} is closed")

    def _check_writable(self, *, allow_fenced: bool = False) -> None:
        self._check_open()
        if self.mode != "rw":
            raise ReadOnlyError(f"{self.path} is open read-only", hint="reopen with mode='rw'")
        if self._fenced and not allow_fenced:
            raise FencedError(
                f"{self.path} is fenced: {getattr(self, '_fence_reason', 'fenced')}",
                hint="a newer primary exists; rejoin this node as a standby",
            )

    def _acquire_lock(self) -> None:
        if not self.path.is_dir():
            raise NotFoundError(f"data dir {self.path} does not exist")
        if self.mode == "ro":
            return  # read-only opens take no lock file: they must not create one
        self._lock_fd = acquire_data_dir_lock(self.path, hint="stop the node that holds it, or open it read-only")

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _copy_prefix(source: Path, target: Path, limit: int | None) -> None:
    with open(source, "rb") as reader, open(target, "wb") as writer:
        remaining = limit
        while remaining is None or remaining > 0:
            chunk = reader.read(1 << 20 if remaining is None else min(1 << 20, remaining))
            if not chunk:
                break
            writer.write(chunk)
            if remaining is not None:
                remaining -= len(chunk)
        writer.flush()
        fsio.fsync(writer.fileno())
