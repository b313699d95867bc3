"""Appending to the log: LSN assignment, buffering, segment rolling and group commit.

Concurrency model (one lock; every file write names its offset):

* ``append`` assigns the LSN and frames the record into an in-memory buffer under the lock.
* ``sync`` is a group commit. The first caller that finds its LSN not yet durable becomes the
  leader: it takes the whole buffer, releases the lock, writes it and syncs it (one
  ``pwritev(RWF_DSYNC)`` where the kernel has it, else ``pwrite`` + ``fdatasync``). Callers that
  arrive meanwhile append to a fresh buffer and wait on a private lock; the leader releases
  those it covered and, if more records arrived meanwhile, commits them too (at most
  ``_EXTRA_LEADER_ROUNDS`` times) before it hands over. Only the leader does I/O without the
  lock; everyone else who needs the file (flush, roll, seal, close) waits for it first, so
  bytes reach the file in LSN order.
* ``durability="async"`` adds a daemon thread that runs that same commit every N ms.

A failed write or fsync leaves the file in an unknown state (a torn record, or pages the kernel
may have dropped), so the writer refuses everything afterwards instead of appending after a hole.
"""

from __future__ import annotations

import _thread
import os
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from engines import fsio
from engines.errors import ClosedError, EngineError, InvalidArgumentError, map_os_error
from engines.fsutil import fsync_dir
from engines.wal.files import check_ends_cleanly, write_all, write_durably
from engines.wal.format import BLOCK_SIZE, frame_into
from engines.wal.records import MAX_FIELD_LENGTH, PAYLOAD_PREFIX, Op, WalRecord, encode_batch
from engines.wal.segments import list_segments, segment_name

__all__ = ["DURABILITY_MODES", "WalWriter"]

DURABILITY_MODES = ("sync", "async")
_VALID_OPS = frozenset(Op)
_U32_PACK = struct.Struct("<I").pack
_allocate_lock = _thread.allocate_lock
# A commit: fd, bytes to write, last LSN they hold, file offset, whether the file is synced so far.
_Commit = tuple[int, bytearray, int, int, bool]
# Commits a leader may chain before handing over (bounds the wait of the leader's own caller).
_EXTRA_LEADER_ROUNDS = 2
_prefix_pack = PAYLOAD_PREFIX.pack
_time_ns = time.time_ns
_PUT, _DELETE, _BATCH = Op.PUT, Op.DELETE, Op.BATCH


class WalWriter:
    """Appends records to new segments in ``wal_dir``.

    Args:
        wal_dir: the ``<data-dir>/wal`` directory; created on the first append.
        next_lsn: the LSN the first appended record gets. The writer never appends to an
            existing file: its first append creates the segment named ``next_lsn``.
        durability: ``"sync"`` (callers make writes durable with ``sync``) or ``"async"`` (a
            background thread commits every ``async_interval_ms``).
        segment_bytes: a segment is sealed once it reaches this size (at a record boundary).
        async_interval_ms: period of the background commit in ``async`` mode.
        buffer_bytes: buffered bytes are handed to the OS once the buffer reaches this size.
        on_seal: called with each segment once it is sealed (fsynced and closed), under the
            writer's lock: the archive status marks it ``.ready`` there. It must be quick.

    Raises:
        InvalidArgumentError: bad options, or ``wal_dir`` already holds records at or after
            ``next_lsn`` (appending would give two records the same LSN).
        WalCorruptionError: the last segment does not end cleanly (a torn tail after a crash):
            cut it with ``truncate_at_first_bad`` first (``WalReader.tolerated_tail`` tells).
    """

    def __init__(
        self,
        wal_dir: Path,
        *,
        next_lsn: int,
        durability: str = "sync",
        segment_bytes: int = 64 * 2**20,
        async_interval_ms: int = 10,
        buffer_bytes: int = 1 * 2**20,
        on_seal: Callable[[Path], None] | None = None,
    ) -> None:
        if not isinstance(next_lsn, int) or next_lsn < 1:
            raise InvalidArgumentError(f"next_lsn must be a positive integer, not {next_lsn!r}")
        if durability not in DURABILITY_MODES:
            raise InvalidArgumentError(f"durability must be one of {', '.join(DURABILITY_MODES)}, not {durability!r}")
        if segment_bytes < BLOCK_SIZE:
            raise InvalidArgumentError(f"segment_bytes must be at least one block ({BLOCK_SIZE}), not {segment_bytes}")
        if async_interval_ms <= 0 or buffer_bytes <= 0:
            raise InvalidArgumentError("async_interval_ms and buffer_bytes must be positive")
        self._wal_dir = Path(wal_dir)
        segments = [segment for segment in list_segments(self._wal_dir) if segment.size > 0]
        clash = [segment for segment in segments if segment.first_lsn >= next_lsn]
        if clash:
            raise InvalidArgumentError(
                f"WAL {self._wal_dir} already holds segment {clash[0].path.name} at or after LSN {next_lsn}",
                hint="open the writer with next_lsn = the last LSN in the WAL + 1",
            )
        if segments:
            check_ends_cleanly(segments[-1])
        self._durability = durability
        self._segment_bytes = segment_bytes
        self._buffer_bytes = buffer_bytes
        # One lock; the Condition over it serves the rare waits for I/O (flush, seal, close).
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._next_lsn = next_lsn
        self._durable_lsn = next_lsn - 1
        self._buffer = bytearray()
        self._fd: int | None = None
        self._segment_path: Path | None = None
        self._on_seal = on_seal
        self.segment_started_ns: int | None = None
        """When the open segment got its first record (None: no segment open)."""
        self._segment_size = 0  # bytes of the open segment, buffered ones included
        self._written = 0  # bytes of the open segment handed to the OS, or reserved by a commit in flight
        self._synced = 0  # bytes of the open segment known durable
        self._block_offset = 0
        self._io_busy = False
        self._waiters: list[tuple[int, _thread.LockType]] = []  # (LSN awaited, lock) of followers
        self._wake_chain: deque[_thread.LockType] = deque()  # released followers, woken one by one
        # Set once: why appends are refused (closed, or a failed write). Checked on every append.
        self._refusal: EngineError | None = None
        self._failure: OSError | None = None
        self.fsync_count = 0
        """How many times the writer has called fdatasync (group commit shares them)."""
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        if durability == "async":
            self._flusher = threading.Thread(
                target=self._flush_periodically,
                args=(async_interval_ms / 1000.0,),
                name=f"wal-flusher-{self._wal_dir}",
                daemon=True,
            )
            self._flusher.start()

    # -- state ---------------------------------------------------------------------------------

    @property
    def wal_dir(self) -> Path:
        return self._wal_dir

    @property
    def durability(self) -> str:
        return self._durability

    @property
    def next_lsn(self) -> int:
        """The LSN the next append gets."""
        return self._next_lsn

    @property
    def last_lsn(self) -> int:
        """The last LSN assigned (``next_lsn - 1``)."""
        return self._next_lsn - 1

    @property
    def durable_lsn(self) -> int:
        """Every record up to this LSN is fsynced."""
        return self._durable_lsn

    def current_segment(self) -> tuple[Path, int] | None:
        """The open segment and how many of its bytes the OS has (``flush`` first for all)."""
        with self._cond:
            self._wait_for_io()  # a commit in flight: its bytes are reserved but maybe not written
            if self._segment_path is None:
                return None
            return self._segment_path, self._written

    # -- appending -----------------------------------------------------------------------------

    def append(self, op: Op, key: bytes, value: bytes = b"", timestamp_ns: int | None = None) -> int:
        """Append one record; return its LSN. It is buffered: ``sync`` makes it durable.

        Raises:
            InvalidArgumentError: a bad op, key or value.
            ClosedError, DiskFullError, StorageIOError: the writer is closed or has failed.
        """
        # The async goal is 300k appends/s from one thread: cheap checks first, module-level
        # bindings, and the raw lock rather than the Condition's Python-level __enter__.
        if op not in _VALID_OPS:
            raise InvalidArgumentError(f"op must be an Op, not {op!r}")
        if type(key) is not bytes or type(value) is not bytes:
            raise InvalidArgumentError(
                f"key and value must be bytes, not {type(key).__name__} and {type(value).__name__}"
            )
        if op != _PUT and (op == _DELETE and value or op == _BATCH and key):
            raise InvalidArgumentError("a DELETE record has no value, a BATCH record no key (use append_batch)")
        if timestamp_ns is None:
            timestamp_ns = _time_ns()
        if len(key) + len(value) > MAX_FIELD_LENGTH or type(timestamp_ns) is not int or timestamp_ns >> 64:
            _check_sizes(key, value, timestamp_ns)  # the precise complaint (or an int subclass: fine)
        return self._append(op, key, value, timestamp_ns, None)

    def append_batch(self, entries: Sequence[tuple[bytes, bytes | None]], timestamp_ns: int | None = None) -> int:
        """Append an atomic batch (``None`` deletes) as one record with one LSN; return it."""
        value = encode_batch(entries)
        if timestamp_ns is None:
            timestamp_ns = _time_ns()
        _check_sizes(b"", value, timestamp_ns)
        return self._append(Op.BATCH, b"", value, timestamp_ns, None)

    def append_record(self, record: WalRecord) -> int:
        """Append a record read from another log (replication, PITR), keeping LSN and timestamp.

        Raises:
            InvalidArgumentError: ``record.lsn`` is not ``next_lsn``.
        """
        if record.op not in _VALID_OPS or type(record.key) is not bytes or type(record.value) is not bytes:
            raise InvalidArgumentError(f"not a valid WAL record: {record!r}")
        _check_sizes(record.key, record.value, record.timestamp_ns)
        return self._append(record.op, record.key, record.value, record.timestamp_ns, record.lsn)

    def _append(self, op: int, key: bytes, value: bytes, timestamp_ns: int, required_lsn: int | None) -> int:
        """Assign the LSN and frame the record into the buffer (arguments already checked)."""
        with self._lock:
            if self._refusal is not None:
                raise self._refused()
            lsn = self._next_lsn
            if required_lsn is not None and required_lsn != lsn:
                raise InvalidArgumentError(f"record LSN {required_lsn} is not the next LSN {lsn}")
            if self._fd is None:
                self._open_segment(lsn)
            payload = _prefix_pack(lsn, timestamp_ns, op, len(key)) + key + _U32_PACK(len(value)) + value
            buffer = self._buffer
            before = len(buffer)
            self._block_offset = frame_into(buffer, payload, self._block_offset)
            self._segment_size += len(buffer) - before
            self._next_lsn = lsn + 1
            if self._segment_size >= self._segment_bytes:
                self._seal_locked()
            elif len(buffer) >= self._buffer_bytes:
                self._write_buffer_locked()
            return lsn

    # -- durability ----------------------------------------------------------------------------

    def sync(self, lsn: int | None = None) -> None:
        """Return once ``lsn`` (default: the last assigned) is written and fdatasync'ed.

        Concurrent callers share one fdatasync (group commit): the first becomes the leader and
        commits everything buffered; the others wait for it and return if it covered them.

        Raises:
            InvalidArgumentError: ``lsn`` has not been assigned yet.
            DiskFullError, StorageIOError: the write or the fsync failed; nothing after the last
                durable LSN can be trusted, and the writer refuses further appends.
        """
        if lsn is not None and lsn <= self._durable_lsn:
            return
        target = -1
        while True:
            waiter = None
            job = None
            with self._lock:
                if target < 0:
                    target = self._next_lsn - 1 if lsn is None else lsn
                    if target >= self._next_lsn:
                        raise InvalidArgumentError(f"LSN {target} has not been assigned (next is {self._next_lsn})")
                if self._durable_lsn >= target:
                    return
                if self._failure is not None:
                    raise self._refused()
                if self._io_busy:
                    # A private lock the leader releases, rather than Condition.wait: a woken
                    # follower then returns without queueing for the writer's lock again.
                    waiter = _allocate_lock()
                    waiter.acquire()
                    self._waiters.append((target, waiter))
                else:
                    job = self._begin_commit()
            if waiter is not None:
                waiter.acquire()
                self._pass_wake_on()
                if self._durable_lsn >= target:
                    return
                continue
            rounds = _EXTRA_LEADER_ROUNDS
            while job is not None:
                job = self._finish_commit(*job, go_on=rounds > 0)
                rounds -= 1

    def _begin_commit(self) -> _Commit | None:
        """Take the buffer for a commit (lock held); ``None`` when there is nothing to write."""
        fd = self._fd
        upto = self._next_lsn - 1
        if fd is None:
            # No open segment: everything assigned went into sealed, fsynced segments.
            self._durable_lsn = upto
            self._wake_locked()
            return None
        data = self._buffer
        self._buffer = bytearray()
        self._io_busy = True
        # The commit's byte range is reserved now, so that ``flush`` may hand later records to the
        # OS (at their own offsets) while this commit is on disk: an engine calls ``flush`` under
        # its write lock, and waiting there for the fsync would serialise every writer.
        offset = self._written
        self._written += len(data)
        return fd, data, upto, offset, offset == self._synced

    def _finish_commit(
        self, fd: int, data: bytearray, upto: int, offset: int, synced: bool, *, go_on: bool
    ) -> _Commit | None:
        """Write and fdatasync without the lock, then publish the new durable LSN.

        With ``go_on``, records that arrived meanwhile are taken for the next commit at once
        (returned as the next job): handing leadership to a follower costs a thread wake-up
        and a GIL hand-off, which is time the disk sits idle.
        """
        failure: OSError | None = None
        try:
            write_durably(fd, data, offset, synced)
        except OSError as exc:
            failure = exc
        with self._cond:
            self._io_busy = False
            if failure is not None:
                self._fail(failure)
                raise self._refused()
            self._synced = max(self._synced, offset + len(data))
            self.fsync_count += 1
            if upto > self._durable_lsn:
                self._durable_lsn = upto
            job = self._begin_commit() if go_on and self._buffer else None
            self._wake_locked(covered_only=job is not None)
            return job

    def _wake_locked(self, *, covered_only: bool = False) -> None:
        """Release followers (lock held): those now durable, or all so that one of them leads.

        Only the first is released here; each woken follower releases the next
        (``_pass_wake_on``). Waking them all at once has them fight over the GIL (a storm of
        futex calls that cost more CPU than the commit), and keeps the leader from its next I/O.
        """
        waiters = self._waiters
        if waiters:
            durable = self._durable_lsn
            if covered_only:
                self._waiters = [waiter for waiter in waiters if waiter[0] > durable]
                self._wake_chain.extend(waiter for target, waiter in waiters if target <= durable)
            else:
                self._waiters = []
                self._wake_chain.extend(waiter for _target, waiter in waiters)
            self._pass_wake_on()
        if not covered_only:
            self._cond.notify_all()

    def _pass_wake_on(self) -> None:
        """Release the next follower waiting to be woken, if any (no lock needed: deque ops are atomic)."""
        try:
            waiter = self._wake_chain.popleft()
        except IndexError:
            return
        waiter.release()

    def flush(self) -> None:
        """Hand buffered bytes to the OS (a ``pwrite``), without fsync."""
        with self._cond:
            if self._failure is not None:
                raise self._refused()
            if self._fd is not None:
                self._write_buffer_locked()

    def seal(self) -> Path | None:
        """Flush, fsync and close the open segment; the next append starts a new one.

        Returns:
            the sealed segment, or ``None`` when no segment was open.
        """
        with self._cond:
            if self._failure is not None:
                raise self._refused()
            return self._seal_locked()

    def close(self) -> None:
        """Flush, fsync and close; stop the background flusher. Closing twice is harmless."""
        self._stop.set()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join()
        with self._cond:
            if isinstance(self._refusal, ClosedError):
                return
            self._wait_for_io()
            try:
                if self._failure is None:
                    self._seal_locked()
            finally:
                if self._fd is not None:
                    # Only after a failure: the buffered records were never acknowledged.
                    os.close(self._fd)
                    self._fd = None
                self._refusal = ClosedError(f"WAL writer for {self._wal_dir} is closed")
                self._wake_locked()

    def __enter__(self) -> WalWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals (the lock is held) ----------------------------------------------------------

    def _open_segment(self, first_lsn: int) -> None:
        path = self._wal_dir / segment_name(first_lsn)
        try:
            if not self._wal_dir.is_dir():
                self._wal_dir.mkdir(parents=True, exist_ok=True)
                fsync_dir(self._wal_dir.parent)  # the new directory's own entry
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except FileExistsError:
                if path.stat().st_size:
                    raise InvalidArgumentError(
                        f"WAL segment {path} already exists", hint="the writer's next_lsn is behind the WAL"
                    ) from None
                # An empty file: a crash right after a previous writer created it. Nothing to keep.
                fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
            # The file's name must survive a crash as much as its bytes: fdatasync does not
            # cover the directory entry.
            fsync_dir(self._wal_dir)
        except OSError as exc:
            raise map_os_error(exc, f"creating WAL segment {path}") from exc
        self._fd = fd
        self._segment_path = path
        self.segment_started_ns = _time_ns()
        self._segment_size = 0
        self._written = 0
        self._synced = 0
        self._block_offset = 0

    def _wait_for_io(self) -> None:
        while self._io_busy:
            self._cond.wait()

    def _write_buffer_locked(self) -> None:
        fd = self._fd
        if fd is None or not self._buffer:
            return
        data = self._buffer
        self._buffer = bytearray()
        try:
            write_all(fd, data, self._written)
        except OSError as exc:
            self._fail(exc)
            raise self._refused() from exc
        self._written += len(data)

    def _seal_locked(self) -> Path | None:
        self._wait_for_io()
        fd = self._fd
        path = self._segment_path
        if fd is None:
            return None
        self._write_buffer_locked()
        try:
            fsio.fdatasync(fd)
            os.close(fd)
        except OSError as exc:
            self._fail(exc)
            raise self._refused() from exc
        self.fsync_count += 1
        self._fd = None
        self._segment_path = None
        self.segment_started_ns = None
        self._segment_size = 0
        self._written = 0
        self._synced = 0
        self._block_offset = 0
        self._durable_lsn = self._next_lsn - 1
        self._wake_locked()
        if self._on_seal is not None and path is not None:
            self._on_seal(path)
        return path

    def _fail(self, exc: OSError) -> None:
        if self._failure is None:
            self._failure = exc
            self._refusal = map_os_error(exc, f"writing WAL segment {self._segment_path}")
        self._wake_locked()

    def _refused(self) -> EngineError:
        """A fresh exception for each caller (raising one instance from many threads mixes tracebacks)."""
        refusal = self._refusal
        assert refusal is not None
        error = type(refusal)(refusal.message, hint=refusal.hint)
        if self._failure is not None:
            error.__cause__ = self._failure
        return error

    def _flush_periodically(self, interval: float) -> None:
        while not self._stop.wait(interval):
            if self._durable_lsn >= self._next_lsn - 1:
                continue
            try:
                self.sync()
            except EngineError:
                return  # the failure is kept and raised to every appender


def _check_sizes(key: bytes, value: bytes, timestamp_ns: int) -> None:
    """Fields must fit their u32/u64 slots in the payload."""
    if len(key) + len(value) > MAX_FIELD_LENGTH:
        raise InvalidArgumentError("key and value must be shorter than 4 GiB together")
    if not isinstance(timestamp_ns, int) or not 0 <= timestamp_ns < 1 << 64:
        raise InvalidArgumentError(f"timestamp_ns out of range: {timestamp_ns}")
