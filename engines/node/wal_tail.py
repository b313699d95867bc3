"""Reading the primary's own WAL from where each standby left off, without re-reading segments.

``WalReader`` reads whole segments (up to 64 MiB) and parses them from the start: right for replay,
far too slow for a standby that polls every few milliseconds for the last few records. A
``WalTail`` remembers, for the LSN a standby will ask for next, the segment and byte offset where
that record starts, and parses only the bytes appended since.

The segment being written is read while the writer appends to it, so a record cut short at the end
of the file is not damage: it is not there yet, and the next call reads it. Damage inside a sealed
segment (one a later segment follows) is raised as ``WalCorruptionError``.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from engines.errors import WalCorruptionError, map_os_error
from engines.wal.format import BLOCK_SIZE, FIRST, FULL, HEADER, HEADER_SIZE, LAST, MIDDLE, fragment_crc
from engines.wal.records import PAYLOAD_PREFIX
from engines.wal.segments import SegmentInfo, list_segments, segment_name

__all__ = ["WalGoneError", "TailBatch", "WalTail"]

_CURSORS_KEPT = 32


class WalGoneError(Exception):
    """The WAL no longer holds ``lsn``: it was recycled (archived) already."""

    def __init__(self, lsn: int, oldest: int | None) -> None:
        super().__init__(f"LSN {lsn} is no longer in the WAL (oldest kept: {oldest})")
        self.lsn = lsn
        self.oldest = oldest


@dataclass(frozen=True)
class _Cursor:
    segment_lsn: int  # first LSN of the segment (its name)
    offset: int  # byte offset of the next record's first fragment
    next_lsn: int


@dataclass
class TailBatch:
    """Raw record payloads with ``first_lsn..last_lsn``; ``remaining_bytes`` of WAL follow them."""

    payloads: list[bytes]
    last_lsn: int
    remaining_bytes: int
    last_timestamp_ns: int = 0


class WalTail:
    """Serves ranges of one WAL directory to any number of standbys (thread-safe)."""

    def __init__(self, wal_dir: Path) -> None:
        self.wal_dir = Path(wal_dir)
        self._cursors: OrderedDict[int, _Cursor] = OrderedDict()
        self._lock = threading.Lock()

    def oldest_lsn(self) -> int | None:
        segments = list_segments(self.wal_dir)
        return segments[0].first_lsn if segments else None

    def read(self, from_lsn: int, to_lsn: int, *, max_bytes: int = 4 << 20) -> TailBatch:
        """The records ``from_lsn..to_lsn`` present in the files, up to about ``max_bytes``.

        Raises:
            WalGoneError: ``from_lsn`` was recycled.
            WalCorruptionError: a sealed segment is damaged.
        """
        with self._lock:
            cursor = self._cursors.pop(from_lsn, None)
        segments = list_segments(self.wal_dir)
        if cursor is None or not any(s.first_lsn == cursor.segment_lsn for s in segments):
            cursor = self._locate(from_lsn, segments)
        payloads: list[bytes] = []
        size = 0
        last_ts = 0
        while from_lsn <= to_lsn and size < max_bytes:
            following = [s for s in segments if s.first_lsn > cursor.segment_lsn]
            found, cursor, ended = self._parse(cursor, to_lsn, max_bytes - size, sealed=bool(following))
            for payload in found:
                payloads.append(payload)
                size += len(payload)
            if found:
                last_ts = PAYLOAD_PREFIX.unpack_from(found[-1], 0)[1]
            if not ended or not following or cursor.next_lsn > to_lsn:
                break
            nxt = following[0]
            if nxt.first_lsn != cursor.next_lsn:
                raise WalCorruptionError(
                    nxt.path.name, 0, f"LSN gap: expected {cursor.next_lsn}, segment starts at {nxt.first_lsn}"
                )
            cursor = _Cursor(nxt.first_lsn, 0, nxt.first_lsn)
        with self._lock:
            self._cursors[cursor.next_lsn] = cursor
            while len(self._cursors) > _CURSORS_KEPT:
                self._cursors.popitem(last=False)
        remaining = 0
        for segment in list_segments(self.wal_dir):
            if segment.first_lsn == cursor.segment_lsn:
                remaining += max(0, segment.size - cursor.offset)
            elif segment.first_lsn > cursor.segment_lsn:
                remaining += segment.size
        return TailBatch(payloads, cursor.next_lsn - 1, remaining, last_ts)

    def _locate(self, lsn: int, segments: list[SegmentInfo]) -> _Cursor:
        """A cursor at ``lsn``: the segment that holds it, parsed from its start (the slow path)."""
        candidates = [s for s in segments if s.first_lsn <= lsn]
        if not candidates:
            raise WalGoneError(lsn, segments[0].first_lsn if segments else None)
        segment = candidates[-1]
        cursor = _Cursor(segment.first_lsn, 0, segment.first_lsn)
        while cursor.next_lsn < lsn:
            sealed = segment is not segments[-1]
            _found, moved, ended = self._parse(cursor, lsn - 1, 1 << 62, sealed=sealed, keep=False)
            if moved == cursor:
                break  # the records before lsn are not written yet; the caller gets nothing
            cursor = moved
            if ended:
                break
        return cursor

    def _parse(
        self, cursor: _Cursor, to_lsn: int, budget: int, *, sealed: bool, keep: bool = True
    ) -> tuple[list[bytes], _Cursor, bool]:
        """Parse records from ``cursor`` up to ``to_lsn``: (payloads, new cursor, reached end of file)."""
        path = self.wal_dir / segment_name(cursor.segment_lsn)
        try:
            with open(path, "rb") as handle:
                data = os.pread(
                    handle.fileno(), max(0, os.fstat(handle.fileno()).st_size - cursor.offset), cursor.offset
                )
        except FileNotFoundError:
            raise WalGoneError(cursor.next_lsn, self.oldest_lsn()) from None
        except OSError as exc:
            raise map_os_error(exc, f"reading WAL segment {path}") from exc
        base = cursor.offset
        position = 0
        size = len(data)
        found: list[bytes] = []
        used = 0
        next_lsn = cursor.next_lsn
        record_start = 0
        while used < budget:
            record_start = position
            parts: list[bytes] = []
            complete = False
            while True:
                left_in_block = BLOCK_SIZE - (base + position) % BLOCK_SIZE
                if left_in_block < HEADER_SIZE:
                    position += left_in_block  # the zero trailer of the block
                    if not parts:
                        record_start = position
                if position + HEADER_SIZE > size:
                    break
                masked, length, kind = HEADER.unpack_from(data, position)
                stop = position + HEADER_SIZE + length
                if stop > size or (masked == 0 and length == 0 and kind == 0):
                    break
                fragment = data[position + HEADER_SIZE : stop]
                if not FULL <= kind <= LAST or fragment_crc(kind, fragment) != masked:
                    if sealed:
                        raise WalCorruptionError(path.name, base + record_start, "checksum mismatch")
                    break  # being written right now: read again later
                if kind in (FULL, FIRST) and parts or kind in (MIDDLE, LAST) and not parts:
                    raise WalCorruptionError(path.name, base + position, "bad record type")
                parts.append(fragment)
                position = stop
                if kind in (FULL, LAST):
                    complete = True
                    break
            if not complete:
                position = record_start
                break
            payload = parts[0] if len(parts) == 1 else b"".join(parts)
            lsn = PAYLOAD_PREFIX.unpack_from(payload, 0)[0]
            if lsn > to_lsn:
                position = record_start
                break
            if lsn != next_lsn:
                raise WalCorruptionError(path.name, base + record_start, f"LSN {lsn} where {next_lsn} was expected")
            next_lsn = lsn + 1
            if keep:
                found.append(payload)
                used += len(payload)
        at_end = position >= size or (size - position < HEADER_SIZE and not any(data[position:]))
        return found, _Cursor(cursor.segment_lsn, base + position, next_lsn), at_end
