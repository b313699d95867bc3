"""Physical framing of the log, after LevelDB's ``doc/log_format.txt``.

A segment is a sequence of 32 KiB blocks. Each block holds physical records::

    crc32c u32 | length u16 | type u8 | fragment        (little endian)

``crc32c`` covers the type byte and the fragment, and is masked as LevelDB masks it (a CRC over
bytes that themselves hold CRCs is weak otherwise). A logical record that does not fit in what is
left of a block is split into FIRST, MIDDLE... and LAST fragments; fragments never cross a block
boundary. When fewer than 7 bytes are left in a block they are zero-filled (the trailer) and the
next fragment starts the next block. Type 0 is reserved, so a zero-filled region never parses as
a record.
"""

from __future__ import annotations

import struct

from engines.crc import crc32c

__all__ = [
    "BLOCK_SIZE",
    "HEADER",
    "HEADER_SIZE",
    "FULL",
    "FIRST",
    "MIDDLE",
    "LAST",
    "mask_crc",
    "fragment_crc",
    "frame_into",
]

BLOCK_SIZE = 32 * 1024
HEADER = struct.Struct("<IHB")
HEADER_SIZE = HEADER.size  # 7

ZERO = 0
FULL = 1
FIRST = 2
MIDDLE = 3
LAST = 4

_MASK_DELTA = 0xA282EAD8
_crc32c = crc32c
# CRC of the lone type byte, continued over the fragment: saves a concatenation per record.
_TYPE_CRC = tuple(_crc32c(bytes([kind])) for kind in range(5))
_TRAILER_ZEROS = bytes(HEADER_SIZE)


def mask_crc(crc: int) -> int:
    """LevelDB's mask: rotate right by 15 bits and add a constant."""
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def fragment_crc(kind: int, fragment: bytes | memoryview) -> int:
    """The masked CRC stored in the header of a fragment of type ``kind``."""
    crc = _crc32c(fragment, _TYPE_CRC[kind])
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame_into(buffer: bytearray, payload: bytes, block_offset: int) -> int:
    """Append ``payload`` to ``buffer`` as physical records; return the new offset in the block.

    Args:
        buffer: bytes not yet written to the segment file.
        payload: one logical record (``records.encode_payload``).
        block_offset: where in its 32 KiB block the segment's next byte falls.
    """
    left = BLOCK_SIZE - block_offset
    if left < HEADER_SIZE:
        buffer += _TRAILER_ZEROS[:left]
        block_offset = 0
        left = BLOCK_SIZE
    size = len(payload)
    if size + HEADER_SIZE <= left:
        # The common case, kept free of the loop below.
        crc = _crc32c(payload, _TYPE_CRC[FULL])
        buffer += HEADER.pack((((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF, size, FULL)
        buffer += payload
        return block_offset + HEADER_SIZE + size
    view = memoryview(payload)
    position = 0
    first = True
    while True:
        left = BLOCK_SIZE - block_offset
        if left < HEADER_SIZE:
            buffer += _TRAILER_ZEROS[:left]
            block_offset = 0
            left = BLOCK_SIZE
        # A fragment may be empty (exactly 7 bytes left): LevelDB does the same, and it keeps
        # the rule "a header never straddles a block" without a special case.
        length = min(left - HEADER_SIZE, size - position)
        last = position + length == size
        if first:
            kind = FULL if last else FIRST
        else:
            kind = LAST if last else MIDDLE
        fragment = view[position : position + length]
        buffer += HEADER.pack(fragment_crc(kind, fragment), length, kind)
        buffer += fragment
        block_offset += HEADER_SIZE + length
        position += length
        first = False
        if last:
            return block_offset
