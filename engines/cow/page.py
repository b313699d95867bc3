"""The page format of ``data.cow``: a fixed page size, and a checksummed header on every page.

Every page (and every multi-page run: a large node, an overflow value, the freelist) starts with
the same 32-byte header, little endian::

    0  u32 checksum   crc32c of the run's bytes from offset 4 to its end (header and body)
    4  u8  type       META, BRANCH, LEAF, OVERFLOW or FREELIST
    5  u8  flags      LEAF_HAS_OVERFLOW on a leaf that holds overflow references
    6  u16 reserved   zero
    8  u64 page id    the page's own number: a page written to the wrong place is caught
    16 u32 overflow   how many pages follow this one in the same run
    20 u32 count      entries (leaf, branch, freelist) or value length (overflow)
    24 u64 txid       the commit that wrote the page

Unlike LMDB, which checksums only the meta, every page carries a checksum, so a torn or rotten
page raises ``PageCorruptionError`` on read and never returns wrong data.
"""

from __future__ import annotations

import struct
from enum import IntEnum

from engines.crc import crc32c
from engines.errors import CorruptionError

__all__ = [
    "DATA_FILE",
    "DEFAULT_PAGE_SIZE",
    "HEADER",
    "HEADER_SIZE",
    "LEAF_HAS_OVERFLOW",
    "MAX_PAGE_SIZE",
    "MIN_PAGE_SIZE",
    "PageCorruptionError",
    "PageType",
    "check_page_size",
    "pages_for",
    "seal",
    "verify_checksum",
]

DATA_FILE = "data.cow"
DEFAULT_PAGE_SIZE = 4096
MIN_PAGE_SIZE = 1024
MAX_PAGE_SIZE = 65536
HEADER = struct.Struct("<IBBHQIIQ")
HEADER_SIZE = HEADER.size
LEAF_HAS_OVERFLOW = 1

_CHECKSUM = struct.Struct("<I")


class PageType(IntEnum):
    """The ``type`` byte of a page header."""

    META = 1
    BRANCH = 2
    LEAF = 3
    OVERFLOW = 4
    FREELIST = 5


class PageCorruptionError(CorruptionError):
    """A page failed its checksum or a structural check. ``page`` is the page number.

    ``offset`` is also the page number (as in verify reports, where pages address the file);
    the byte offset is ``page * page_size``. ``kind`` is the verify problem kind it maps to
    ("checksum", "page-header", "reference", "truncated", "structure", "overflow", "freelist",
    "meta").
    """

    def __init__(self, message: str, *, file: str, page: int, kind: str = "checksum", hint: str | None = None) -> None:
        super().__init__(
            message,
            file=file,
            offset=page,
            hint=hint or "run `drconsole engine verify` for the full picture, then `drconsole engine repair`",
        )
        self.page = page
        self.kind = kind


def check_page_size(page_size: object) -> int:
    """``page_size`` if it is a power of two in [MIN_PAGE_SIZE, MAX_PAGE_SIZE]; else ValueError."""
    if (
        not isinstance(page_size, int)
        or isinstance(page_size, bool)
        or page_size < MIN_PAGE_SIZE
        or page_size > MAX_PAGE_SIZE
        or page_size & (page_size - 1)
    ):
        raise ValueError(f"page_size must be a power of two from {MIN_PAGE_SIZE} to {MAX_PAGE_SIZE}, not {page_size!r}")
    return page_size


def pages_for(length: int, page_size: int) -> int:
    """How many pages a run of ``length`` bytes (header included) occupies."""
    return max(1, -(-length // page_size))


def seal(buffer: bytearray) -> None:
    """Write the checksum of ``buffer`` (a whole run, header filled in) into its first 4 bytes."""
    _CHECKSUM.pack_into(buffer, 0, crc32c(memoryview(buffer)[4:]))


def verify_checksum(buffer: bytes | bytearray | memoryview) -> bool:
    """Whether the stored checksum of a whole run matches its bytes."""
    return bool(_CHECKSUM.unpack_from(buffer, 0)[0] == crc32c(memoryview(buffer)[4:]))
