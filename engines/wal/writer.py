"""Appending to the log: LSN assignment, buffering, segment rolling and group commit.

Concurrency model (one lock, one condition):

* ``append`` assigns the LSN and frames the record into an in-memory buffer under the lock.
* ``sync`` is a group commit. The first caller that finds its LSN not yet durable becomes the
  leader: it takes the whole buffer, releases the lock, writes and ``fdatasync``s, and wakes
  everyone. Callers that arrive meanwhile append to a fresh buffer and wait; the next leader
  commits all of them with one ``fdatasync``. Only the leader does I/O without the lock, and
  everyone else who needs the file (flush, roll, seal, close) waits for it to finish first, so
  bytes reach the file in LSN order.
* ``durability="async"`` adds a daemon thread that runs that same commit every N ms.

A failed write or fsync leaves the file in an unknown state (a torn record, or pages the kernel
may have dropped), so the writer refuses everything afterwards instead of appending after a hole.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from engines.errors import ClosedError, EngineError, InvalidArgumentError, map_os_error
from engines.fsutil import fsync_dir
from engines.wal.format import BLOCK_SIZE, frame_into
from engines.wal.records import MAX_FIELD_LENGTH, PAYLOAD_PREFIX, Op, WalRecord, encode_batch
from engines.wal.segments import list_segments, segment_name

__all__ = ["DURABILITY_MODES", "WalWriter"]

DURABILITY_MODES = ("sync", "async")
_VALID_OPS = frozenset(Op)
_U32_PACK = struct.Struct("<I").pack
_prefix_pack = PAYLOAD_PREFIX.pack


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

    Raises:
        InvalidArgumentError: bad options, or ``wal_dir`` already holds records at or after
            ``next_lsn`` (appending would give two records the same LSN).
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
        clash = [s for s in list_segments(self._wal_dir) if s.first_lsn >= next_lsn and s.size > 0]
        if clash:
            raise InvalidArgumentError(
                f"WAL {self._wal_dir} already holds segment {clash[0].path.name} at or after LSN {next_lsn}",
                hint="open the writer with next_lsn = the last LSN in the WAL + 1",
            )
        self._durability = durability
        self._segment_bytes = segment_bytes
        self._buffer_bytes = buffer_bytes
        self._cond = threading.Condition(threading.Lock())
        self._next_lsn = next_lsn
        self._durable_lsn = next_lsn - 1
        self._buffer = bytearray()
        self._fd: int | None = None
        self._segment_path: Path | None = None
        self._segment_size = 0  # bytes of the open segment, buffered ones included
        self._written = 0  # bytes of the open segment handed to the OS
        self._block_offset = 0
        self._io_busy = False
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
        if op not in _VALID_OPS:
            raise InvalidArgumentError(f"op must be an Op, not {op!r}")
        if type(key) is not bytes or type(value) is not bytes:
            raise InvalidArgumentError(
                f"key and value must be bytes, not {type(key).__name__} and {type(value).__name__}"
            )
        if op == Op.DELETE and value:
            raise InvalidArgumentError("a DELETE record has no value")
        if op == Op.BATCH and key:
            raise InvalidArgumentError("a BATCH record has no key; use append_batch")
        return self._append(op, key, value, time.time_ns() if timestamp_ns is None else timestamp_ns, None)

    def append_batch(self, entries: Sequence[tuple[bytes, bytes | None]], timestamp_ns: int | None = None) -> int:
        """Append an atomic batch (``None`` deletes) as one record with one LSN; return it."""
        value = encode_batch(entries)
        return self._append(Op.BATCH, b"", value, time.time_ns() if timestamp_ns is None else timestamp_ns, None)

    def append_record(self, record: WalRecord) -> int:
        """Append a record read from another log (replication, PITR), keeping LSN and timestamp.

        Raises:
            InvalidArgumentError: ``record.lsn`` is not ``next_lsn``.
        """
        if record.op not in _VALID_OPS or type(record.key) is not bytes or type(record.value) is not bytes:
            raise InvalidArgumentError(f"not a valid WAL record: {record!r}")
        return self._append(record.op, record.key, record.value, record.timestamp_ns, record.lsn)

    def _append(self, op: int, key: bytes, value: bytes, timestamp_ns: int, required_lsn: int | None) -> int:
        if len(key) > MAX_FIELD_LENGTH or len(value) > MAX_FIELD_LENGTH:
            raise InvalidArgumentError("key and value must each be shorter than 4 GiB")
        if not isinstance(timestamp_ns, int) or not 0 <= timestamp_ns < 1 << 64:
            raise InvalidArgumentError(f"timestamp_ns out of range: {timestamp_ns}")
        with self._cond:
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
            elif len(buffer) >= self._buffer_bytes and not self._io_busy:
                self._write_buffer_locked()
            return lsn

    # -- durability ----------------------------------------------------------------------------

    def sync(self, lsn: int | None = None) -> None:
        """Return once ``lsn`` (default: the last assigned) is written and fdatasync'ed.

        Concurrent callers share one fdatasync (group commit).

        Raises:
            InvalidArgumentError: ``lsn`` has not been assigned yet.
            DiskFullError, StorageIOError: the write or the fsync failed; nothing after the last
                durable LSN can be trusted, and the writer refuses further appends.
        """
        if lsn is not None and lsn <= self._durable_lsn:
            return
        with self._cond:
            target = self._next_lsn - 1 if lsn is None else lsn
            if target >= self._next_lsn:
                raise InvalidArgumentError(f"LSN {target} has not been assigned (next is {self._next_lsn})")
            while self._durable_lsn < target:
                if self._failure is not None:
                    raise self._refused()
                if self._io_busy:
                    self._cond.wait()
                    continue
                self._commit_as_leader()

    def _commit_as_leader(self) -> None:
        """Write the buffer and fdatasync with the lock released; the caller holds the lock."""
        fd = self._fd
        upto = self._next_lsn - 1
        if fd is None:
            # No open segment: everything assigned went into sealed, fsynced segments.
            self._durable_lsn = upto
            self._cond.notify_all()
            return
        data = self._buffer
        self._buffer = bytearray()
        self._io_busy = True
        failure: OSError | None = None
        self._cond.release()
        try:
            if data:
                _write_all(fd, data)
            os.fdatasync(fd)
        except OSError as exc:
            failure = exc
        finally:
            self._cond.acquire()
            self._io_busy = False
        if failure is not None:
            self._fail(failure)
            raise self._refused()
        self._written += len(data)
        self.fsync_count += 1
        if upto > self._durable_lsn:
            self._durable_lsn = upto
        self._cond.notify_all()

    def flush(self) -> None:
        """Hand buffered bytes to the OS (``os.write``), without fsync."""
        with self._cond:
            self._wait_for_io()
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
                self._cond.notify_all()

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
        self._segment_size = 0
        self._written = 0
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
            _write_all(fd, data)
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
            os.fdatasync(fd)
            os.close(fd)
        except OSError as exc:
            self._fail(exc)
            raise self._refused() from exc
        self.fsync_count += 1
        self._fd = None
        self._segment_path = None
        self._segment_size = 0
        self._written = 0
        self._block_offset = 0
        self._durable_lsn = self._next_lsn - 1
        self._cond.notify_all()
        return path

    def _fail(self, exc: OSError) -> None:
        if self._failure is None:
            self._failure = exc
            self._refusal = map_os_error(exc, f"writing WAL segment {self._segment_path}")
        self._cond.notify_all()

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


def _write_all(fd: int, data: bytearray) -> None:
    """``os.write`` may write less than asked (signals, quotas); loop until all of it is out."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
