"""Reading one SSTable: point lookups, ordered block chunks for scans, and the full check.

Opening reads the footer, properties, index and bloom blocks (all checksummed); data blocks are
read on demand and checked on every read, so a damaged block raises ``TableCorruptionError``
instead of returning wrong data. A table that cannot be opened is represented by
``DamagedTable``, which raises for any key inside the range the manifest says it held.

The file descriptor stays open for the reader's lifetime: a scan holding a reader can finish
even after compaction has retired and unlinked the file.
"""

from __future__ import annotations

import itertools
import json
import os
from bisect import bisect_left
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engines.errors import CorruptionError
from engines.lsm.block_cache import BlockCache
from engines.lsm.bloom import BloomFilter
from engines.lsm.sstable_format import (
    FOOTER_SIZE,
    FORMAT_VERSION,
    TRAILER_SIZE,
    BlockError,
    Footer,
    decode_block,
    decode_footer,
    decode_handle,
    open_block,
)
from engines.lsm.table_meta import SSTABLE_DIR, TableMeta, table_name

__all__ = ["MISSING", "TableReader", "DamagedTable", "TableCorruptionError", "open_table", "Chunk"]

MISSING: Any = object()  # "this table says nothing about the key"
Chunk = tuple[list[bytes], list[bytes | None]]
_MAX_READAHEAD_BLOCKS = 64
_table_ids = itertools.count(1)


class TableCorruptionError(CorruptionError):
    """A table failed a check. ``kind`` is the verify problem kind (checksum, footer, ...)."""

    def __init__(self, kind: str, message: str, *, file: str, offset: int | None, hint: str | None = None) -> None:
        super().__init__(
            message,
            file=file,
            offset=offset,
            hint=hint or "run `drconsole engine verify`; quarantine the table or restore a backup",
        )
        self.kind = kind


def _error(relative: str, problem: BlockError, what: str) -> TableCorruptionError:
    return TableCorruptionError(
        problem.kind,
        f"{relative}: {what} at offset {problem.offset}: {problem.detail}",
        file=relative,
        offset=problem.offset,
    )


class TableReader:
    """An open, readable table. Build it with ``open_table``."""

    damaged = False

    def __init__(
        self,
        path: Path,
        relative: str,
        fd: int,
        size: int,
        footer: Footer,
        properties: dict[str, Any],
        index_keys: list[bytes],
        offsets: list[int],
        sizes: list[int],
        bloom: BloomFilter | None,
        bloom_problem: TableCorruptionError | None,
        meta: TableMeta,
        cache: BlockCache | None,
    ) -> None:
        self.path = path
        self.relative = relative
        self._fd: int | None = fd
        self.size = size
        self.footer = footer
        self.properties = properties
        self.index_keys = index_keys
        self.offsets = offsets
        self.sizes = sizes
        self.bloom = bloom
        self.bloom_problem = bloom_problem
        self.meta = meta
        self.id = next(_table_ids)
        self._cache = cache

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        """Close the file now (only when no scan can still be using this reader)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __del__(self) -> None:
        try:
            self.close()
        except OSError:
            pass

    @property
    def memory_bytes(self) -> int:
        """What the reader keeps in memory: index keys and the bloom filter."""
        bloom = self.bloom.memory_bytes if self.bloom is not None else 0
        return bloom + sum(map(len, self.index_keys)) + 80 * len(self.index_keys)

    # -- reads ---------------------------------------------------------------------------------
    def get(self, key: bytes) -> Any:
        """The value (None for a tombstone) or ``MISSING``."""
        bloom = self.bloom
        if bloom is not None and not bloom.may_contain(key):
            return MISSING
        index = bisect_left(self.index_keys, key)
        if index == len(self.index_keys):
            return MISSING
        cache = self._cache
        block = cache.get((self.id, index)) if cache is not None else None
        if block is None:
            block = self._load(index, cache)
        keys = block[0]
        position = bisect_left(keys, key)
        if position < len(keys) and keys[position] == key:
            return block[1][position]
        return MISSING

    def _read(self, offset: int, length: int) -> bytes:
        fd = self._fd
        if fd is None:
            raise TableCorruptionError("io", f"{self.relative} is closed", file=self.relative, offset=offset)
        try:
            data = os.pread(fd, length, offset)
        except OSError as exc:
            raise TableCorruptionError(
                "io",
                f"{self.relative}: read of {length} bytes at {offset} failed: {exc.strerror}",
                file=self.relative,
                offset=offset,
            ) from exc
        if len(data) != length:
            raise TableCorruptionError(
                "checksum", f"{self.relative}: block at offset {offset} is truncated", file=self.relative, offset=offset
            )
        return data

    def _decode(self, stored: bytes | memoryview, offset: int) -> Chunk:
        try:
            body = open_block(stored, offset)
            return decode_block(body)
        except BlockError as problem:
            raise _error(self.relative, problem, "data block") from None
        except ValueError as exc:
            raise TableCorruptionError(
                "checksum",
                f"{self.relative}: data block at offset {offset} is malformed: {exc}",
                file=self.relative,
                offset=offset,
            ) from None

    def _load(self, index: int, cache: BlockCache | None) -> Chunk:
        offset, size = self.offsets[index], self.sizes[index]
        block = self._decode(self._read(offset, size + TRAILER_SIZE), offset)
        if not block[0] or block[0][-1] != self.index_keys[index]:
            raise TableCorruptionError(
                "index",
                f"{self.relative}: data block at offset {offset} does not end with the key the index names",
                file=self.relative,
                offset=offset,
            )
        if cache is not None:
            cache.put((self.id, index), block, size, len(block[0]))
        return block

    def chunks(self, start: bytes | None, end: bytes | None) -> Iterator[Chunk]:
        """Sorted ``(keys, values)`` chunks (one per block) of keys in ``[start, end)``."""
        index_keys = self.index_keys
        count = len(index_keys)
        index = 0 if start is None else bisect_left(index_keys, start)
        if index >= count:
            return
        last = count if end is None else min(count, bisect_left(index_keys, end) + 1)
        # The first block is what a short scan needs: take it from (and leave it in) the cache.
        cache = self._cache
        block = cache.get((self.id, index)) if cache is not None else None
        if block is None:
            block = self._load(index, cache)
        keys, values = block
        low = 0 if start is None else bisect_left(keys, start)
        high = len(keys) if end is None or keys[-1] < end else bisect_left(keys, end)
        if low < high:
            yield (keys, values) if low == 0 and high == len(keys) else (keys[low:high], values[low:high])
        index += 1
        readahead = 2
        offsets, sizes = self.offsets, self.sizes
        while index < last:
            group_end = min(last, index + readahead)
            readahead = min(readahead * 2, _MAX_READAHEAD_BLOCKS)
            base = offsets[index]
            raw = memoryview(self._read(base, offsets[group_end - 1] + sizes[group_end - 1] + TRAILER_SIZE - base))
            for block_index in range(index, group_end):
                at = offsets[block_index] - base
                keys, values = self._decode(raw[at : at + sizes[block_index] + TRAILER_SIZE], offsets[block_index])
                if not keys or keys[-1] != index_keys[block_index]:
                    raise TableCorruptionError(
                        "index",
                        f"{self.relative}: data block at offset "
                        f"{offsets[block_index]} does not end with the key the index names",
                        file=self.relative,
                        offset=offsets[block_index],
                    )
                if end is not None and keys[-1] >= end:
                    high = bisect_left(keys, end)
                    if high:
                        yield keys[:high], values[:high]
                    return
                yield keys, values
            index = group_end

    def raw_block(self, index: int) -> Chunk:
        """Data block ``index`` read and checked, bypassing the cache (verify, repair)."""
        return self._decode(self._read(self.offsets[index], self.sizes[index] + TRAILER_SIZE), self.offsets[index])


class DamagedTable:
    """A table the manifest names but that cannot be read: any read of its key range raises."""

    damaged = True
    bloom = None
    bloom_problem = None
    memory_bytes = 0
    id = 0

    def __init__(self, meta: TableMeta, error: CorruptionError) -> None:
        self.meta = meta
        self.error = error
        self.relative = meta.relative_path
        self.index_keys: list[bytes] = []

    def _raise(self) -> Any:
        raise CorruptionError(
            f"{self.relative} (keys {self.meta.min_key!r}..{self.meta.max_key!r}) cannot be read: {self.error.message}",
            file=self.error.file or self.relative,
            offset=self.error.offset,
            hint="run `drconsole engine verify`; quarantine the table and restore its range from a backup",
        )

    def get(self, key: bytes) -> Any:
        return self._raise()

    def chunks(self, start: bytes | None, end: bytes | None) -> Iterator[Chunk]:
        self._raise()
        yield from ()

    def close(self) -> None:
        pass


def _meta_from_properties(number: int, size: int, properties: dict[str, Any]) -> TableMeta:
    return TableMeta(
        number=number,
        level=int(properties["level"]),
        size=size,
        entries=int(properties["entries"]),
        tombstones=int(properties["tombstones"]),
        min_key=bytes.fromhex(properties["min_key"]),
        max_key=bytes.fromhex(properties["max_key"]),
        min_lsn=int(properties["min_lsn"]),
        max_lsn=int(properties["max_lsn"]),
        durable_lsn=int(properties.get("durable_lsn", properties["max_lsn"])),
        lineage=dict(properties.get("lineage") or {}),
    )


def open_table(
    data_dir: Path, number: int, *, meta: TableMeta | None = None, cache: BlockCache | None = None
) -> TableReader:
    """Open ``sstables/NNNNNN.sst`` of ``data_dir``; raises ``TableCorruptionError``.

    Without ``meta`` (rebuild, verify of stray files) the table's own properties describe it.
    A damaged bloom filter does not prevent reading: the reader works without it and keeps the
    problem in ``bloom_problem`` for verify.
    """
    relative = f"{SSTABLE_DIR}/{table_name(number)}"
    path = Path(data_dir) / relative
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise TableCorruptionError(
            "missing-file",
            f"{relative} is missing",
            file=relative,
            offset=None,
            hint="run `drconsole engine repair` to rebuild the manifest, or restore a backup",
        ) from None
    except OSError as exc:
        raise TableCorruptionError(
            "io", f"{relative} cannot be opened: {exc.strerror}", file=relative, offset=None
        ) from exc
    try:
        return _open_fd(path, relative, fd, number, meta, cache)
    except BaseException:
        os.close(fd)
        raise


def _read_meta_block(fd: int, relative: str, handle: tuple[int, int], kind: str, what: str) -> bytes:
    offset, size = handle
    stored = os.pread(fd, size + TRAILER_SIZE, offset)
    try:
        return open_block(stored, offset)
    except BlockError as problem:
        raise TableCorruptionError(
            kind, f"{relative}: {what} block at offset {offset}: {problem.detail}", file=relative, offset=offset
        ) from None


def _open_fd(
    path: Path, relative: str, fd: int, number: int, meta: TableMeta | None, cache: BlockCache | None
) -> TableReader:
    size = os.fstat(fd).st_size
    footer_at = max(0, size - FOOTER_SIZE)
    try:
        footer = decode_footer(os.pread(fd, FOOTER_SIZE, footer_at), footer_at, size)
    except BlockError as problem:
        raise _error(relative, problem, "footer") from None
    props_body = _read_meta_block(fd, relative, footer.props, "properties", "properties")
    try:
        properties = json.loads(props_body)
        if int(properties["format_version"]) > FORMAT_VERSION:
            raise TableCorruptionError(
                "format-version",
                f"{relative}: properties say format version {properties['format_version']}, "
                f"newer than this drconsole understands ({FORMAT_VERSION})",
                file=relative,
                offset=footer.props[0],
            )
        described = _meta_from_properties(number, size, properties)
    except (ValueError, KeyError, TypeError) as exc:
        raise TableCorruptionError(
            "properties",
            f"{relative}: properties block at offset {footer.props[0]} is malformed: {exc}",
            file=relative,
            offset=footer.props[0],
        ) from None
    if int(properties.get("number", number)) != number:
        raise TableCorruptionError(
            "properties",
            f"{relative}: properties name table {properties['number']}",
            file=relative,
            offset=footer.props[0],
        )
    index_body = _read_meta_block(fd, relative, footer.index, "index", "index")
    try:
        index_keys, handles = decode_block(index_body)
        positions = [decode_handle(handle) for handle in handles if handle is not None]
        if len(positions) != len(index_keys) or not index_keys:
            raise ValueError("index entries without handles, or no entries")
    except (ValueError, TypeError) as exc:
        raise TableCorruptionError(
            "index",
            f"{relative}: index block at offset {footer.index[0]} is malformed: {exc}",
            file=relative,
            offset=footer.index[0],
        ) from None
    offsets = [position[0] for position in positions]
    sizes = [position[1] for position in positions]
    if any(offset + length + TRAILER_SIZE > footer.bloom[0] for offset, length in positions):
        raise TableCorruptionError(
            "index",
            f"{relative}: index block at offset {footer.index[0]} points past the data blocks",
            file=relative,
            offset=footer.index[0],
        )
    bloom: BloomFilter | None = None
    bloom_problem: TableCorruptionError | None = None
    if footer.bloom[1]:
        try:
            bloom = BloomFilter.decode(_read_meta_block(fd, relative, footer.bloom, "bloom", "bloom filter"))
        except TableCorruptionError as exc:
            bloom_problem = exc
        except ValueError as exc:
            bloom_problem = TableCorruptionError(
                "bloom",
                f"{relative}: bloom block at offset {footer.bloom[0]} is malformed: {exc}",
                file=relative,
                offset=footer.bloom[0],
            )
    return TableReader(
        path,
        relative,
        fd,
        size,
        footer,
        properties,
        index_keys,
        offsets,
        sizes,
        bloom,
        bloom_problem,
        meta or described,
        cache,
    )
