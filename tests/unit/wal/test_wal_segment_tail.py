"""The last record's (LSN, time) read from a segment's end, as hot backups read it.

A record whose first fragment sits in the last few bytes of a 32 KiB block holds fewer payload bytes
there than its (LSN, time) prefix: the prefix continues in the next fragment, after a header. Reading
the prefix from the first fragment alone took that header as part of the time stamp (a backup's
``lsn_end_time_ns`` came out as 12734462968119867105, in the year 2373).
"""

from __future__ import annotations

import pytest

from engines.wal.files import _last_record_in
from engines.wal.format import BLOCK_SIZE, HEADER_SIZE, frame_into
from engines.wal.records import PAYLOAD_PREFIX, encode_payload

T0 = 1_796_551_108_000_000_000


@pytest.mark.parametrize("first_fragment_bytes", [0, 1, 3, PAYLOAD_PREFIX.size - 1, PAYLOAD_PREFIX.size])
def test_the_prefix_is_gathered_across_fragments(first_fragment_bytes: int) -> None:
    buffer = bytearray()
    # A first record sized so the second starts with HEADER_SIZE + first_fragment_bytes left in the block.
    overhead = len(encode_payload(1, T0, 1, b"k", b""))
    filler = BLOCK_SIZE - 2 * HEADER_SIZE - first_fragment_bytes - overhead
    offset = frame_into(buffer, encode_payload(1, T0, 1, b"k", b"v" * filler), 0)
    assert BLOCK_SIZE - offset == HEADER_SIZE + first_fragment_bytes
    frame_into(buffer, encode_payload(2, T0 + 5, 1, b"key", b"value" * 10), offset)
    assert _last_record_in(bytes(buffer), True) == (2, T0 + 5)


def test_a_record_torn_inside_its_prefix_is_not_read() -> None:
    buffer = bytearray()
    overhead = len(encode_payload(1, T0, 1, b"k", b""))
    offset = frame_into(buffer, encode_payload(1, T0, 1, b"k", b"v" * (BLOCK_SIZE - 2 * HEADER_SIZE - 3 - overhead)), 0)
    frame_into(buffer, encode_payload(2, T0 + 5, 1, b"key", b"value"), offset)
    torn = bytes(buffer[: BLOCK_SIZE + HEADER_SIZE + 2])  # the second fragment cut inside the prefix
    assert _last_record_in(torn, True) is None
