"""How WAL records travel between nodes: checksummed, length-prefixed payloads.

A ``/wal`` response body is a sequence of frames::

    length u32 | crc32c u32 | payload        (little endian)

where ``payload`` is the WAL's own logical-record encoding (``engines.wal.records``:
``lsn, timestamp_ns, op, key, value``). Shipping the payload as the log holds it keeps the
standby's WAL byte-for-byte the same records, and the CRC catches damage in transit (HTTP over
loopback has none, but a proxy or a flaky link may).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from engines.crc import crc32c
from engines.errors import CorruptionError
from engines.wal.records import WalRecord, decode_payload, encode_payload

__all__ = ["FRAME_HEADER", "encode_frames", "encode_record", "decode_frames"]

FRAME_HEADER = struct.Struct("<II")


def encode_record(record: WalRecord) -> bytes:
    """The payload of ``record`` as the WAL encodes it."""
    return encode_payload(record.lsn, record.timestamp_ns, int(record.op), record.key, record.value)


def encode_frames(payloads: Iterable[bytes]) -> bytes:
    """Frame raw WAL payloads for a response body."""
    parts: list[bytes] = []
    for payload in payloads:
        parts.append(FRAME_HEADER.pack(len(payload), crc32c(payload)))
        parts.append(payload)
    return b"".join(parts)


def decode_frames(body: bytes, source: str = "replication stream") -> list[WalRecord]:
    """Parse a response body back into records.

    Raises:
        CorruptionError: a frame is cut short or its checksum does not match.
    """
    records: list[WalRecord] = []
    view = memoryview(body)
    position = 0
    size = len(body)
    while position < size:
        if position + FRAME_HEADER.size > size:
            raise CorruptionError("truncated frame header", file=source, offset=position)
        length, checksum = FRAME_HEADER.unpack_from(body, position)
        start = position + FRAME_HEADER.size
        end = start + length
        if end > size:
            raise CorruptionError("truncated frame", file=source, offset=position)
        payload = bytes(view[start:end])
        if crc32c(payload) != checksum:
            raise CorruptionError("checksum mismatch", file=source, offset=position)
        records.append(decode_payload(payload, source, position))
        position = end
    return records
