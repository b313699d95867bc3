"""The SSTable file format (version 1), after LevelDB's ``doc/table_format.md``.

    <data block 0> ... <data block N-1>    sorted entries, cut at ~block_bytes, maybe zstd
    <bloom block>                          blocked bloom filter over every key
    <properties block>                     JSON: counts, key range, LSN range, level, lineage
    <index block>                          one entry per data block: last key -> offset, size
    <footer>                               fixed 52 bytes, the last bytes of the file

Every block is followed by a 5-byte trailer: ``compression u8 | crc32c u32`` where the checksum
covers the stored (possibly compressed) bytes and the compression byte. The footer is

    index_offset u64 | index_size u32 | bloom_offset u64 | bloom_size u32 |
    props_offset u64 | props_size u32 | crc32c u32 | format_version u32 | magic 8 bytes

its checksum covering the six handles and the version. The version and the magic sit at fixed
places from the end so that a table written by a newer format is recognised as such (and not as
damage) whatever else changed. Sizes in handles exclude the trailer.

A block body (data and index blocks alike) holds entries so that decoding is a handful of C
calls, not a Python loop per entry::

    key_0 value_0 key_1 value_1 ...        concatenated bytes
    offsets u32 x (2n + 1)                 start of key_i (2i), of value_i (2i + 1), end
    tombstones u32 x t                     indexes whose value is a deletion
    n u32 | t u32
"""

from __future__ import annotations

import struct
import sys
import threading
from array import array
from itertools import accumulate, chain

import zstandard

from engines.crc import crc32c

__all__ = [
    "MAGIC",
    "FORMAT_VERSION",
    "FOOTER_SIZE",
    "TRAILER_SIZE",
    "NO_COMPRESSION",
    "ZSTD_COMPRESSION",
    "BlockError",
    "Footer",
    "encode_block",
    "decode_block",
    "seal_block",
    "open_block",
    "encode_footer",
    "decode_footer",
    "encode_handle",
    "decode_handle",
]

MAGIC = b"DRLSMSST"
FORMAT_VERSION = 1
NO_COMPRESSION = 0
ZSTD_COMPRESSION = 1
TRAILER_SIZE = 5
_TRAILER = struct.Struct("<BI")
_FOOTER_BODY = struct.Struct("<QIQIQI")
_FOOTER_TAIL = struct.Struct("<II8s")  # crc32c, format_version, magic
FOOTER_SIZE = _FOOTER_BODY.size + _FOOTER_TAIL.size
_COUNTS = struct.Struct("<II")
_HANDLE = struct.Struct("<QI")

_U32 = "I" if array("I").itemsize == 4 else "L"
_NATIVE_LITTLE = sys.byteorder == "little"


class BlockError(Exception):
    """A block or footer that fails its checks. ``kind`` is a verify problem kind."""

    def __init__(self, kind: str, offset: int, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.offset = offset
        self.detail = detail


def _u32_array(values: object) -> bytes:
    packed = array(_U32, values)  # type: ignore[call-overload]
    if not _NATIVE_LITTLE:
        packed.byteswap()
    return packed.tobytes()


def encode_block(keys: list[bytes], values: list[bytes | None]) -> bytes:
    """The body of a block holding ``keys`` (sorted) and their values (None: a tombstone)."""
    tombstones = [index for index, value in enumerate(values) if value is None]
    stored: list[bytes] = [b"" if value is None else value for value in values] if tombstones else values  # type: ignore[assignment]
    parts: list[bytes] = list(chain.from_iterable(zip(keys, stored)))
    offsets = _u32_array(accumulate(map(len, parts), initial=0))
    return b"".join(parts) + offsets + _u32_array(tombstones) + _COUNTS.pack(len(keys), len(tombstones))


def decode_block(body: bytes) -> tuple[list[bytes], list[bytes | None]]:
    """Keys and values of a block body; raises ``ValueError`` when its layout is impossible."""
    size = len(body)
    if size < _COUNTS.size:
        raise ValueError("block shorter than its counts")
    count, tombstone_count = _COUNTS.unpack_from(body, size - 8)
    tombstone_at = size - 8 - 4 * tombstone_count
    offsets_at = tombstone_at - 4 * (2 * count + 1)
    if offsets_at < 0:
        raise ValueError(f"block of {size} bytes cannot hold {count} entries")
    offsets = struct.unpack_from(f"<{2 * count + 1}I", body, offsets_at)
    if offsets[0] != 0 or offsets[-1] != offsets_at:
        raise ValueError("block offsets do not span its entries")
    middles = offsets[1::2]
    # Comprehensions with plain slicing beat map(slice, ...) by a third here.
    keys = [body[start:stop] for start, stop in zip(offsets[0::2], middles)]
    values: list[bytes | None] = [body[start:stop] for start, stop in zip(middles, offsets[2::2])]
    if tombstone_count:
        for index in struct.unpack_from(f"<{tombstone_count}I", body, tombstone_at):
            if index >= count:
                raise ValueError(f"tombstone index {index} beyond {count} entries")
            values[index] = None
    return keys, values


class _Codec(threading.local):
    def __init__(self) -> None:
        self.decompressor = zstandard.ZstdDecompressor()


_codec = _Codec()


def seal_block(body: bytes, compressor: zstandard.ZstdCompressor | None) -> bytes:
    """``body`` as stored: compressed when that saves at least 1/8, then the trailer."""
    kind = NO_COMPRESSION
    if compressor is not None:
        packed = compressor.compress(body)
        if len(packed) < len(body) - (len(body) >> 3):
            body, kind = packed, ZSTD_COMPRESSION
    return body + _TRAILER.pack(kind, crc32c(bytes((kind,)), value=crc32c(body)))


def open_block(stored: bytes | memoryview, offset: int) -> bytes:
    """The body of a stored block (payload + trailer) read at ``offset``; checks the checksum.

    ``stored`` may be a memoryview into a larger read-ahead buffer: nothing is copied until the
    body itself is produced.
    """
    length = len(stored) - TRAILER_SIZE
    if length < 0:
        raise BlockError("checksum", offset, "block truncated: shorter than its trailer")
    kind, expected = _TRAILER.unpack_from(stored, length)
    view = memoryview(stored)[:length]
    if crc32c(_KIND_BYTES[kind] if kind < 256 else b"", value=crc32c(view)) != expected:
        raise BlockError("checksum", offset, f"block checksum mismatch ({length} bytes)")
    if kind == NO_COMPRESSION:
        return stored[:length] if isinstance(stored, bytes) else bytes(view)
    if kind == ZSTD_COMPRESSION:
        try:
            return _codec.decompressor.decompress(view)  # type: ignore[no-any-return]
        except zstandard.ZstdError as exc:
            raise BlockError("checksum", offset, f"zstd block does not decompress: {exc}") from exc
    raise BlockError("checksum", offset, f"unknown compression type {kind}")


_KIND_BYTES = [bytes((kind,)) for kind in range(256)]


class Footer:
    """The block handles and the format version read from a table's footer."""

    __slots__ = ("index", "bloom", "props", "version")

    def __init__(
        self, index: tuple[int, int], bloom: tuple[int, int], props: tuple[int, int], version: int = FORMAT_VERSION
    ) -> None:
        self.index = index
        self.bloom = bloom
        self.props = props
        self.version = version


def encode_footer(footer: Footer) -> bytes:
    body = _FOOTER_BODY.pack(*footer.index, *footer.bloom, *footer.props)
    version = struct.pack("<I", footer.version)
    return body + _FOOTER_TAIL.pack(crc32c(version, value=crc32c(body)), footer.version, MAGIC)


def decode_footer(raw: bytes, offset: int, file_size: int) -> Footer:
    """Parse the footer found at ``offset``; raises ``BlockError`` (kind footer / format-version)."""
    if len(raw) != FOOTER_SIZE:
        raise BlockError("footer", offset, f"file of {file_size} bytes is too short for a footer")
    checksum, version, magic = _FOOTER_TAIL.unpack_from(raw, _FOOTER_BODY.size)
    if magic != MAGIC:
        raise BlockError("footer", offset, f"bad magic {magic!r} (not a drconsole SSTable, or damaged)")
    if version > FORMAT_VERSION:
        raise BlockError(
            "format-version",
            offset,
            f"format version {version} is newer than this drconsole understands ({FORMAT_VERSION})",
        )
    body = raw[: _FOOTER_BODY.size]
    if version < 1 or crc32c(struct.pack("<I", version), value=crc32c(body)) != checksum:
        raise BlockError("footer", offset, "footer checksum mismatch")
    index_offset, index_size, bloom_offset, bloom_size, props_offset, props_size = _FOOTER_BODY.unpack(body)
    for name, start, size in (
        ("index", index_offset, index_size),
        ("bloom", bloom_offset, bloom_size),
        ("properties", props_offset, props_size),
    ):
        if start + size + TRAILER_SIZE > offset:
            raise BlockError("footer", offset, f"{name} handle ({start}, {size}) points past the footer")
    return Footer((index_offset, index_size), (bloom_offset, bloom_size), (props_offset, props_size), version)


def encode_handle(offset: int, size: int) -> bytes:
    return _HANDLE.pack(offset, size)


def decode_handle(raw: bytes) -> tuple[int, int]:
    offset, size = _HANDLE.unpack(raw)
    return int(offset), int(size)
