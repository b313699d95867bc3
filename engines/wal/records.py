"""Logical WAL records: the operation codes, the record type, and the payload and batch codecs.

A logical record is the payload that the physical framing (``format.py``) splits into fragments::

    lsn u64 | timestamp_ns u64 | op u8 | key_len u32 | key | value_len u32 | value   (little endian)

A batch (``Op.BATCH``) has an empty key and a value holding its entries::

    count u32 | per entry: key_len u32 | key | value_len u32 (0xFFFFFFFF = delete) | value
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from engines.errors import CorruptionError, InvalidArgumentError

__all__ = [
    "Op",
    "WalRecord",
    "PAYLOAD_PREFIX",
    "MIN_PAYLOAD_SIZE",
    "MAX_FIELD_LENGTH",
    "OPS_BY_CODE",
    "encode_payload",
    "decode_payload",
    "encode_batch",
    "decode_batch",
    "new_record",
]


class Op(IntEnum):
    """What a record does. The value is the ``op`` byte on disk."""

    PUT = 1
    DELETE = 2
    BATCH = 3


# lsn, timestamp_ns, op, key_len: the fixed part in front of the key.
PAYLOAD_PREFIX = struct.Struct("<QQBI")
_U32 = struct.Struct("<I")
# The smallest payload: empty key and empty value.
MIN_PAYLOAD_SIZE = PAYLOAD_PREFIX.size + _U32.size
MAX_FIELD_LENGTH = 0xFFFFFFFF
# A batch entry whose value length is this is a delete; it can never be a real length because
# a batch value must itself fit in a u32 together with its count and key lengths.
_DELETE_MARK = 0xFFFFFFFF
# Index by the op byte; codes outside 1..3 are rejected before the lookup.
OPS_BY_CODE: tuple[Op | None, ...] = (None, Op.PUT, Op.DELETE, Op.BATCH)


@dataclass(frozen=True, slots=True)
class WalRecord:
    """One logical record as read back from the log.

    Attributes:
        lsn: log sequence number, contiguous across segments.
        timestamp_ns: wall-clock time of the write (``time.time_ns()``), used by PITR.
        op: the operation.
        key: the key (empty for a batch).
        value: the value (empty for a delete, the encoded entries for a batch).
        segment: file name of the segment holding the record.
        offset: byte offset of the record's first fragment in that segment.
    """

    lsn: int
    timestamp_ns: int
    op: Op
    key: bytes
    value: bytes
    segment: str
    offset: int

    def entries(self) -> list[tuple[bytes, bytes | None]]:
        """The changes this record makes, as ``(key, value)`` pairs; ``None`` deletes."""
        if self.op is Op.PUT:
            return [(self.key, self.value)]
        if self.op is Op.DELETE:
            return [(self.key, None)]
        return decode_batch(self.value)


class _RecordBuilder:
    """Same slot layout as ``WalRecord`` without the frozen ``__setattr__``.

    The frozen dataclass ``__init__`` costs about 1.4 us (one ``object.__setattr__`` per field),
    which alone would break the replay goal of 1M records in 2 s. The reader builds records with
    this class and then switches ``__class__`` to ``WalRecord``: same object, a fifth of the cost.
    """

    __slots__ = ("lsn", "timestamp_ns", "op", "key", "value", "segment", "offset")

    def __init__(
        self, lsn: int, timestamp_ns: int, op: Op, key: bytes, value: bytes, segment: str, offset: int
    ) -> None:
        self.lsn = lsn
        self.timestamp_ns = timestamp_ns
        self.op = op
        self.key = key
        self.value = value
        self.segment = segment
        self.offset = offset


def new_record(lsn: int, timestamp_ns: int, op: Op, key: bytes, value: bytes, segment: str, offset: int) -> WalRecord:
    """Build a ``WalRecord`` the fast way (see ``_RecordBuilder``)."""
    record = _RecordBuilder(lsn, timestamp_ns, op, key, value, segment, offset)
    record.__class__ = WalRecord  # type: ignore[assignment]
    return record  # type: ignore[return-value]


# Fail at import, not in the middle of a replay, if the two layouts ever drift apart: assigning
# ``__class__`` raises TypeError when the slots differ.
new_record(1, 0, Op.PUT, b"", b"", "", 0)


def encode_payload(lsn: int, timestamp_ns: int, op: int, key: bytes, value: bytes) -> bytes:
    """The payload bytes of one logical record."""
    return PAYLOAD_PREFIX.pack(lsn, timestamp_ns, op, len(key)) + key + _U32.pack(len(value)) + value


def decode_payload(payload: bytes, segment: str, offset: int) -> WalRecord:
    """Parse a whole payload; raise ``CorruptionError`` when its lengths or op do not add up.

    The reader's hot loop inlines this for single-fragment records; this is the general path.
    """
    size = len(payload)
    if size < MIN_PAYLOAD_SIZE:
        raise CorruptionError("bad record length", file=segment, offset=offset)
    lsn, timestamp_ns, code, key_length = PAYLOAD_PREFIX.unpack_from(payload, 0)
    key_end = PAYLOAD_PREFIX.size + key_length
    if key_end + _U32.size > size:
        raise CorruptionError("bad record length", file=segment, offset=offset)
    (value_length,) = _U32.unpack_from(payload, key_end)
    if key_end + _U32.size + value_length != size:
        raise CorruptionError("bad record length", file=segment, offset=offset)
    if not 0 < code < len(OPS_BY_CODE):
        raise CorruptionError("bad record type", file=segment, offset=offset)
    return new_record(
        lsn,
        timestamp_ns,
        OPS_BY_CODE[code],
        bytes(payload[PAYLOAD_PREFIX.size : key_end]),
        bytes(payload[key_end + _U32.size :]),
        segment,
        offset,
    )


def encode_batch(entries: Sequence[tuple[bytes, bytes | None]]) -> bytes:
    """Encode ``(key, value | None)`` pairs as the value of a ``BATCH`` record.

    Raises:
        InvalidArgumentError: an entry is not a pair of bytes / ``None``, or a field is too long.
    """
    parts: list[bytes] = [_U32.pack(len(entries))]
    for entry in entries:
        try:
            key, value = entry
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"batch entry must be a (key, value) pair, not {entry!r}") from exc
        if not isinstance(key, bytes):
            raise InvalidArgumentError(f"batch key must be bytes, not {type(key).__name__}")
        if len(key) > MAX_FIELD_LENGTH:
            raise InvalidArgumentError("batch key longer than 4 GiB")
        parts.append(_U32.pack(len(key)))
        parts.append(key)
        if value is None:
            parts.append(_U32.pack(_DELETE_MARK))
            continue
        if not isinstance(value, bytes):
            raise InvalidArgumentError(f"batch value must be bytes or None, not {type(value).__name__}")
        if len(value) >= _DELETE_MARK:
            raise InvalidArgumentError("batch value longer than 4 GiB")
        parts.append(_U32.pack(len(value)))
        parts.append(value)
    return b"".join(parts)


def decode_batch(data: bytes) -> list[tuple[bytes, bytes | None]]:
    """Decode the value of a ``BATCH`` record.

    Raises:
        CorruptionError: the bytes are not an encoded batch (lengths overrun or bytes left over).
    """
    size = len(data)
    if size < _U32.size:
        raise CorruptionError("malformed batch: no entry count")
    (count,) = _U32.unpack_from(data, 0)
    position = _U32.size
    entries: list[tuple[bytes, bytes | None]] = []
    for _ in range(count):
        if position + _U32.size > size:
            raise CorruptionError("malformed batch: entry overruns the value")
        (key_length,) = _U32.unpack_from(data, position)
        position += _U32.size
        key_end = position + key_length
        if key_end + _U32.size > size:
            raise CorruptionError("malformed batch: entry overruns the value")
        key = bytes(data[position:key_end])
        (value_length,) = _U32.unpack_from(data, key_end)
        position = key_end + _U32.size
        if value_length == _DELETE_MARK:
            entries.append((key, None))
            continue
        if position + value_length > size:
            raise CorruptionError("malformed batch: entry overruns the value")
        entries.append((key, bytes(data[position : position + value_length])))
        position += value_length
    if position != size:
        raise CorruptionError("malformed batch: bytes after the last entry")
    return entries
