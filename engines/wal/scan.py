"""The read loop over the segments, and the diagnosis of what is wrong when it meets a problem.

``scan_segments`` is the hot path of replay: one ``unpack_from`` for the header and the fixed part
of the payload, one C call for the CRC, two slices. Everything unusual (fragmented records,
damage of any kind) leaves the fast path for plain helper functions, so that the common case
stays a handful of bytecodes per record. A problem is raised as ``SegmentProblem`` inside the
loop and handed to the reader's callback, which decides per recovery mode whether to raise,
stop, or go on further on.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from enum import Enum

from engines.crc import crc32c
from engines.errors import CorruptionError
from engines.wal.format import BLOCK_SIZE, FIRST, FULL, HEADER, HEADER_SIZE, LAST, MIDDLE, mask_crc
from engines.wal.problems import (
    BAD_RECORD_LENGTH,
    BAD_RECORD_TYPE,
    CHECKSUM_MISMATCH,
    LSN_OUT_OF_ORDER,
    NOT_A_SEGMENT,
    TRUNCATED_RECORD,
    ZEROED_REGION,
    lsn_gap,
)
from engines.wal.records import OPS_BY_CODE, PAYLOAD_PREFIX, WalRecord, _RecordBuilder, decode_payload
from engines.wal.segments import SegmentInfo, read_segment

__all__ = [
    "UNKNOWN_LSN",
    "ScanAction",
    "ProblemHandler",
    "SegmentProblem",
    "scan_segments",
    "has_sound_fragment_after",
]

# ``expect`` before the first record: any LSN is accepted there.
UNKNOWN_LSN = -1
# Header and payload prefix read by one unpack: crc, length, type, lsn, timestamp, op, key_len.
_HEAD = struct.Struct("<IHB" + PAYLOAD_PREFIX.format.lstrip("<"))
if _HEAD.size != 28 or HEADER_SIZE != 7:  # the hot loop spells these sizes as literals
    raise RuntimeError("WAL header layout changed; update scan_segments")
_U32 = struct.Struct("<I")
_MASK_DELTA = 0xA282EAD8
_ZEROS = bytes(BLOCK_SIZE)


class SegmentProblem(Exception):
    """A problem met by ``scan_segments``, and how a skipping reader may go on.

    Attributes:
        offset: start of the damaged record (its first fragment): where a truncation cuts.
        reason: one of the reasons of ``problems.py``.
        at: where the damage itself was found (>= offset); the torn-tail check looks after it.
        resume: where a skipping reader continues.
        resync: whether the scan at ``resume`` must first skip stray MIDDLE/LAST fragments.
        lsn: the LSN of the record, for LSN problems (the record itself is sound).
    """

    def __init__(self, offset: int, reason: str, *, at: int, resume: int, resync: bool, lsn: int = UNKNOWN_LSN) -> None:
        super().__init__(f"{reason} at offset {offset}")
        self.offset = offset
        self.reason = reason
        self.at = at
        self.resume = resume
        self.resync = resync
        self.lsn = lsn


def _next_block(position: int) -> int:
    return (position // BLOCK_SIZE + 1) * BLOCK_SIZE


def _damage(record_start: int, reason: str, at: int) -> SegmentProblem:
    """A physical problem: a skipping reader resynchronises at the next block, as LevelDB does."""
    return SegmentProblem(record_start, reason, at=at, resume=_next_block(at), resync=True)


def _fragment_fault(data: bytes, position: int, block_end: int, end: int) -> str | None:
    """Why the fragment at ``position`` is unsound, or ``None`` if its header and CRC hold."""
    if position + HEADER_SIZE > end:
        return TRUNCATED_RECORD if any(data[position:end]) else ZEROED_REGION
    masked, length, kind = HEADER.unpack_from(data, position)
    if masked == 0 and length == 0 and kind == 0:
        return ZEROED_REGION
    stop = position + HEADER_SIZE + length
    if stop > block_end:
        return BAD_RECORD_LENGTH
    if stop > end:
        return TRUNCATED_RECORD
    # The CRC covers the type byte, so a flipped type shows as a checksum mismatch; a bad type
    # behind a good CRC can only come from a writer that wrote it so.
    if mask_crc(crc32c(memoryview(data)[position + HEADER_SIZE - 1 : stop])) != masked:
        return CHECKSUM_MISMATCH
    if not FULL <= kind <= LAST:
        return BAD_RECORD_TYPE
    return None


def _classify_start(data: bytes, reason: str) -> str:
    """At offset 0, a header no writer could produce means the file is not a segment at all.

    A torn first record (crash right after a segment was created) still has a plausible header
    (FULL or FIRST, a length that fits a block), so it keeps its own reason and may be tolerated
    as a torn tail. A sound fragment of the wrong type keeps "bad record type": its CRC proves
    the bytes are WAL data.
    """
    if reason not in (CHECKSUM_MISMATCH, BAD_RECORD_LENGTH, TRUNCATED_RECORD) or len(data) < HEADER_SIZE:
        return reason
    _masked, length, kind = HEADER.unpack_from(data, 0)
    if kind not in (FULL, FIRST) or length > BLOCK_SIZE - HEADER_SIZE:
        return NOT_A_SEGMENT
    return reason


def _check_trailer(data: bytes, position: int, stop: int, record_start: int) -> None:
    """Block trailers are zero; anything else there is damage, not padding."""
    if data[position:stop] != _ZEROS[: stop - position]:
        raise _damage(record_start, BAD_RECORD_LENGTH, position)


def _read_record(data: bytes, position: int, end: int) -> tuple[bytes, int]:
    """Read the logical record starting at ``position`` fragment by fragment.

    Returns:
        the payload and the position after its last fragment.

    Raises:
        SegmentProblem: any damage, located at the record's start.
    """
    start = position
    parts: list[bytes] = []
    while True:
        block_end = _next_block(position)
        if block_end - position < HEADER_SIZE:
            if position >= end:
                raise _damage(start, TRUNCATED_RECORD, position)
            _check_trailer(data, position, min(block_end, end), start)
            position = block_end
            continue
        if position >= end:
            raise _damage(start, TRUNCATED_RECORD, position)
        fault = _fragment_fault(data, position, block_end, end)
        if fault is not None:
            if position == 0:
                fault = _classify_start(data, fault)
            raise _damage(start, fault, position)
        _masked, length, kind = HEADER.unpack_from(data, position)
        stop = position + HEADER_SIZE + length
        if kind not in ((MIDDLE, LAST) if parts else (FULL, FIRST)):
            raise _damage(start, BAD_RECORD_TYPE, position)
        parts.append(data[position + HEADER_SIZE : stop])
        position = stop
        if kind in (FULL, LAST):
            return b"".join(parts), position


def _skip_continuations(data: bytes, position: int, end: int) -> int:
    """After a resync at a block start, skip the rest of a record whose start was lost."""
    while position < end:
        block_end = _next_block(position)
        if block_end - position < HEADER_SIZE:
            _check_trailer(data, position, min(block_end, end), position)
            position = block_end
            continue
        fault = _fragment_fault(data, position, block_end, end)
        if fault is not None:
            raise _damage(position, fault, position)
        _masked, length, kind = HEADER.unpack_from(data, position)
        if kind not in (MIDDLE, LAST):
            return position
        position += HEADER_SIZE + length
    return position


def _payload_problem(start: int, reason: str, stop: int) -> SegmentProblem:
    """A sound fragment whose payload does not parse: only this record is skipped."""
    return SegmentProblem(start, reason, at=start, resume=stop, resync=False)


def _lsn_problem(lsn: int, expect: int, start: int, stop: int) -> SegmentProblem:
    if lsn > expect:
        # A skipping reader starts again at this very record, now expecting its LSN.
        return SegmentProblem(start, lsn_gap(expect, lsn - 1), at=start, resume=start, resync=False, lsn=lsn)
    return SegmentProblem(start, LSN_OUT_OF_ORDER, at=start, resume=stop, resync=False, lsn=lsn)


class ScanAction(Enum):
    """What a reader tells the scan to do about a problem."""

    STOP = "stop"
    NEXT_SEGMENT = "next segment"
    RESUME = "resume"


ProblemHandler = Callable[[str, bytes, bool, SegmentProblem], ScanAction]
"""Called with (segment name, segment bytes, whether it is the last segment, problem).

It raises to end the scan with an error, or returns what to do next."""


def scan_segments(
    segments: list[SegmentInfo],
    from_lsn: int,
    to_lsn: int,
    on_problem: ProblemHandler,
) -> Iterator[WalRecord]:
    """Yield the records of ``segments`` in order, checking framing, CRCs and LSN continuity.

    One generator for all segments, with the per-record work inline: a generator layered on
    top of another costs a tenth of the replay budget.

    Args:
        segments: the segments to read, in LSN order.
        from_lsn: records below it are checked but not yielded.
        to_lsn: the scan ends at the first record above it.
        on_problem: decides about each problem (see ``ProblemHandler``).
    """
    unpack_head = _HEAD.unpack_from
    unpack_u32 = _U32.unpack_from
    crc = crc32c
    new = object.__new__
    shell = _RecordBuilder
    record_class = WalRecord
    ops = OPS_BY_CODE
    block_size = BLOCK_SIZE
    full = FULL
    mask_delta = _MASK_DELTA
    unknown = UNKNOWN_LSN
    expect = UNKNOWN_LSN
    last_index = len(segments) - 1
    for index, info in enumerate(segments):
        segment = info.path.name
        data = read_segment(info.path)
        end = len(data)
        position = 0
        resync = False
        while True:  # runs again only when a skipping reader resumes after a problem
            try:
                if resync:
                    position = _skip_continuations(data, position, end)
                block_end = _next_block(position)
                limit = min(block_end, end)
                while position < end:
                    # Literals: 7 = HEADER_SIZE, 28 = _HEAD.size, 6 = where the CRC'd bytes start.
                    if position + 7 > block_end:
                        _check_trailer(data, position, limit, position)
                        position = block_end
                        block_end += block_size
                        limit = min(block_end, end)
                        continue
                    if position + 28 <= end:
                        masked, length, kind, lsn, timestamp, code, key_length = unpack_head(data, position)
                        stop = position + 7 + length
                        if kind == full and stop <= limit:
                            # A bytes slice is cheaper here than a memoryview slice (measured).
                            computed = crc(data[position + 6 : stop])
                            if masked == (((computed >> 15) | (computed << 17)) + mask_delta) & 0xFFFFFFFF:
                                key_end = position + 28 + key_length
                                if key_end + 4 > stop:
                                    raise _payload_problem(position, BAD_RECORD_LENGTH, stop)
                                (value_length,) = unpack_u32(data, key_end)
                                if key_end + 4 + value_length != stop or not 0 < code < 4:
                                    bad_length = key_end + 4 + value_length != stop
                                    raise _payload_problem(
                                        position, BAD_RECORD_LENGTH if bad_length else BAD_RECORD_TYPE, stop
                                    )
                                if lsn != expect and expect != unknown:
                                    raise _lsn_problem(lsn, expect, position, stop)
                                expect = lsn + 1
                                if lsn >= from_lsn:
                                    if lsn > to_lsn:
                                        return
                                    # Slot stores without an __init__ call: measured 10 % of replay.
                                    built = new(shell)
                                    built.lsn = lsn
                                    built.timestamp_ns = timestamp
                                    built.op = ops[code]
                                    built.key = data[position + 28 : key_end]
                                    built.value = data[key_end + 4 : stop]
                                    built.segment = segment
                                    built.offset = position
                                    built.__class__ = record_class  # type: ignore[assignment]  # see _RecordBuilder
                                    yield built  # type: ignore[misc]
                                position = stop
                                continue
                    # Fragmented records and every kind of damage: the general path.
                    start = position
                    payload, position = _read_record(data, position, end)
                    try:
                        record: WalRecord = decode_payload(payload, segment, start)
                    except CorruptionError as exc:
                        raise _payload_problem(start, exc.message, position) from exc
                    lsn = record.lsn
                    if lsn != expect and expect != unknown:
                        raise _lsn_problem(lsn, expect, start, position)
                    expect = lsn + 1
                    if lsn >= from_lsn:
                        if lsn > to_lsn:
                            return
                        yield record
                    block_end = _next_block(position)
                    limit = min(block_end, end)
                break
            except SegmentProblem as problem:
                action = on_problem(segment, data, index == last_index, problem)
                if action is ScanAction.STOP:
                    return
                if action is ScanAction.NEXT_SEGMENT:
                    break
                if problem.lsn != unknown and problem.resume == problem.offset:
                    expect = problem.lsn  # a gap: accept the jump, go on from this very record
                position = problem.resume
                resync = problem.resync


def has_sound_fragment_after(data: bytes, at: int) -> bool:
    """Whether a sound record start (a FULL or FIRST fragment) follows the damage found at ``at``.

    A torn tail has none: the crash cut the last write short. A record start after the damage
    means the log went on, so the damage is in the middle and must not be ignored. Sound MIDDLE
    or LAST fragments do not count: pages of one write reach the disk in any order, so the later
    fragments of the torn record itself may well be intact.

    The rest of the damaged block is searched byte by byte (its records no longer sit where the
    headers say); each later block is followed fragment by fragment from its start.
    """
    end = len(data)
    block_end = _next_block(at)
    limit = min(block_end, end)
    for position in range(at + 1, limit - HEADER_SIZE + 1):
        _masked, length, kind = HEADER.unpack_from(data, position)
        if kind != FULL and kind != FIRST or position + HEADER_SIZE + length > limit:
            continue  # cheap filters before the CRC
        if _fragment_fault(data, position, block_end, end) is None:
            return True
    for block_start in range(block_end, end, BLOCK_SIZE):
        position = block_start
        block_limit = min(block_start + BLOCK_SIZE, end)
        while position + HEADER_SIZE <= block_limit:
            if _fragment_fault(data, position, block_start + BLOCK_SIZE, end) is not None:
                break
            _masked, length, kind = HEADER.unpack_from(data, position)
            if kind == FULL or kind == FIRST:
                return True
            position += HEADER_SIZE + length
    return False
