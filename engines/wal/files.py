"""File I/O of the log writer: positional writes, durable writes, and the clean-end check.

Kept apart from ``writer.py`` (the concurrency) because these are the system-call details:
every write names its offset, and a commit is one ``pwritev(RWF_DSYNC)`` where available.
"""

from __future__ import annotations

import errno
import os

from engines import fsio
from engines.errors import WalCorruptionError
from engines.wal.format import BLOCK_SIZE, FIRST, FULL, HEADER, HEADER_SIZE, LAST, fragment_crc
from engines.wal.records import PAYLOAD_PREFIX
from engines.wal.scan import ScanAction, SegmentProblem, scan_segments
from engines.wal.segments import SegmentInfo

__all__ = ["check_ends_cleanly", "segment_tail", "write_all", "write_durably"]


def check_ends_cleanly(last: SegmentInfo) -> None:
    """Refuse to start after a last segment that ends in a torn or damaged record.

    The writer starts a new segment; damage left at the end of the old one would then sit in
    the middle of the log, where no reader may tolerate it. After a crash, the torn tail must
    be cut (into quarantine) first. Reads the last segment only.
    """
    found: list[SegmentProblem] = []

    def stop_at_first(_segment: str, _data: bytes, _is_last: bool, problem: SegmentProblem) -> ScanAction:
        found.append(problem)
        return ScanAction.STOP

    for _record in scan_segments([last], 0, 1 << 64, stop_at_first):
        pass
    if found:
        raise WalCorruptionError(
            last.path.name,
            found[0].offset,
            found[0].reason,
            hint="cut it first: engines.wal.truncate_at_first_bad (or `drconsole wal truncate --yes`)",
        )


def segment_tail(segment: SegmentInfo) -> tuple[int, int] | None:
    """The (LSN, time stamp) of the last record of ``segment``; None when it holds none.

    Reads the last blocks only when they parse cleanly (every fragment's CRC checked, the file
    ending on a record boundary); anything else is settled by reading the whole segment as
    ``check_ends_cleanly`` does.

    Raises:
        WalCorruptionError: the segment does not end cleanly.
    """
    quick = _tail_from_last_blocks(segment)
    if quick is not None:
        return quick
    found: list[SegmentProblem] = []

    def stop_at_first(_segment: str, _data: bytes, _is_last: bool, problem: SegmentProblem) -> ScanAction:
        found.append(problem)
        return ScanAction.STOP

    last: tuple[int, int] | None = None
    for record in scan_segments([segment], 0, 1 << 64, stop_at_first):
        last = (record.lsn, record.timestamp_ns)
    if found:
        raise WalCorruptionError(
            segment.path.name, found[0].offset, found[0].reason, hint="cut it first: `drconsole wal truncate --yes`"
        )
    return last


def _tail_from_last_blocks(segment: SegmentInfo, max_blocks: int = 64) -> tuple[int, int] | None:
    """The last record's (LSN, time) from the end of the file; None when that is not plainly sound.

    Fragments never cross a 32 KiB block, so a parse may start at any block boundary: fragments
    continuing an earlier record are passed over until a record starts (a FULL or FIRST).
    """
    size = segment.size
    if size <= 0:
        return None
    with open(segment.path, "rb", buffering=0) as handle:
        for blocks in (1, 4, max_blocks):
            start = max(0, ((size - 1) // BLOCK_SIZE - (blocks - 1)) * BLOCK_SIZE)
            handle.seek(start)
            data = handle.read(size - start)
            found = _last_record_in(data, start == 0)
            if found is not None:
                return found if found[0] >= 0 else None
            if start == 0:
                return None
    return None


def _last_record_in(data: bytes, from_segment_start: bool) -> tuple[int, int] | None:
    """(LSN, time) of the last record that starts in ``data``; (-1, 0) for "parsed, but no record
    starts here" at the segment's start; None when it does not parse cleanly or none starts here."""
    position, end = 0, len(data)
    last: tuple[int, int] | None = None
    started: int | None = None  # where the open logical record's first fragment is
    # The record's (LSN, time) prefix, gathered across fragments: a FIRST fragment at a block's end
    # may hold fewer bytes than the prefix (one read past it took the next header as a time stamp).
    prefix = bytearray()
    seen_start = from_segment_start
    while position < end:
        left = BLOCK_SIZE - position % BLOCK_SIZE
        if left < HEADER_SIZE:
            if any(data[position : position + left]):
                return None
            position += left
            continue
        if position + HEADER_SIZE > end:
            return None
        masked, length, kind = HEADER.unpack_from(data, position)
        stop = position + HEADER_SIZE + length
        if stop > end or length > left - HEADER_SIZE or not FULL <= kind <= LAST:
            return None
        if fragment_crc(kind, memoryview(data)[position + HEADER_SIZE : stop]) != masked:
            return None
        if kind in (FULL, FIRST):
            if started is not None:
                return None  # a record started before the previous one ended
            started, seen_start = position + HEADER_SIZE, True
            prefix = bytearray(data[started : min(stop, started + PAYLOAD_PREFIX.size)])
        elif started is None and seen_start:
            return None  # a continuation of nothing
        elif started is not None and len(prefix) < PAYLOAD_PREFIX.size:
            prefix += data[
                position + HEADER_SIZE : min(stop, position + HEADER_SIZE + PAYLOAD_PREFIX.size - len(prefix))
            ]
        if kind in (FULL, LAST) and started is not None:
            if len(prefix) < PAYLOAD_PREFIX.size:
                return None
            lsn, timestamp, _op, _key = PAYLOAD_PREFIX.unpack_from(prefix)
            last, started = (lsn, timestamp), None
        position = stop
    if started is not None:
        return None  # the file ends inside a record: torn
    if last is None:
        return (-1, 0) if from_segment_start else None
    return last


def write_all(fd: int, data: bytearray, offset: int) -> None:
    """Write ``data`` at ``offset``; ``pwrite`` may write less than asked, so loop.

    Every write names its offset: commits use ``pwritev``, which does not move the file position,
    so plain ``write`` calls would land in the wrong place.
    """
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


_dsync_writes = hasattr(os, "RWF_DSYNC") and hasattr(os, "pwritev")


def write_durably(fd: int, data: bytearray, offset: int, synced: bool) -> None:
    """Write ``data`` at ``offset`` and make the file durable up to its end.

    One ``pwritev(RWF_DSYNC)`` does both in a single system call, so the GIL is released once
    per commit instead of twice: between two calls, followers woken by the previous commit grab
    the GIL and the disk waits for them. It syncs only the range it writes, hence only when
    everything before ``offset`` is durable already (``synced``); otherwise write + fdatasync.
    """
    global _dsync_writes
    if data and synced and _dsync_writes:
        try:
            written = fsio.pwrite_dsync(fd, data, offset)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
            _dsync_writes = False  # an old kernel or a file system without it
        else:
            if written == len(data):
                return
            data = data[written:]
            offset += written
    if data:
        write_all(fd, data, offset)
    fsio.fdatasync(fd)
