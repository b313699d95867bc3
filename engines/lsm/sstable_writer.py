"""Writing one SSTable: sorted entries in, a complete fsynced ``NNNNNN.sst`` out.

The table is written under a temporary name and renamed only once complete and fsynced, so a
crash never leaves a half-written file under a table name. The caller fsyncs the directory
(once for several tables) before naming the table in the manifest.
"""

from __future__ import annotations

import json
import os
import time
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from itertools import accumulate
from operator import add
from pathlib import Path
from typing import Any

import zstandard

from engines import fsio
from engines.crc import crc32c
from engines.errors import InvalidArgumentError, map_os_error
from engines.lsm.bloom import build_bloom
from engines.lsm.sstable_format import (
    FORMAT_VERSION,
    Footer,
    encode_block,
    encode_footer,
    encode_handle,
    seal_block,
)
from engines.lsm.table_meta import TEMP_SUFFIX, TableMeta, table_name

__all__ = ["TableWriter", "ENTRY_OVERHEAD"]

ENTRY_OVERHEAD = 8  # two u32 offsets per entry in a block
_WRITE_CHUNK = 1 << 20


class TableWriter:
    """Accepts entries in strictly increasing key order (``add_many``), then ``finish``."""

    def __init__(
        self,
        directory: Path,
        number: int,
        *,
        level: int,
        block_bytes: int = 4096,
        compression: str = "zstd",
        compression_level: int = 1,
        bloom_bits_per_key: int = 10,
    ) -> None:
        self.directory = Path(directory)
        self.number = number
        self.level = level
        self.path = self.directory / table_name(number)
        self.temp_path = self.directory / f"{number:06d}{TEMP_SUFFIX}"
        self._block_bytes = block_bytes
        self._compressor = zstandard.ZstdCompressor(level=compression_level) if compression == "zstd" else None
        self._compression = compression
        self._bloom_bits = bloom_bits_per_key
        self._pending_keys: list[bytes] = []
        self._pending_values: list[bytes | None] = []
        self._pending_bytes = 0
        self._index_keys: list[bytes] = []
        self._index_handles: list[bytes] = []
        self._hashes = array("I")
        self._buffer = bytearray()
        self._offset = 0
        self._last_key: bytes | None = None
        self._first_key: bytes | None = None
        self.entries = 0
        self.tombstones = 0
        self.raw_bytes = 0
        try:
            self._fd: int | None = os.open(self.temp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise map_os_error(exc, f"creating {self.temp_path}") from exc

    @property
    def file_bytes(self) -> int:
        """Bytes written so far (buffered ones included)."""
        return self._offset + len(self._buffer) + self._pending_bytes

    def add_many(self, keys: Sequence[bytes], values: Sequence[bytes | None]) -> None:
        """Append entries; ``keys`` sorted, all greater than any key added before."""
        count = len(keys)
        if not count:
            return
        if self._last_key is not None and keys[0] <= self._last_key:
            raise InvalidArgumentError(f"table {self.number}: key {keys[0]!r} is not after {self._last_key!r}")
        if self._first_key is None:
            self._first_key = keys[0]
        self._last_key = keys[-1]
        self._hashes.extend(map(crc32c, keys))
        value_sizes = [ENTRY_OVERHEAD if value is None else len(value) + ENTRY_OVERHEAD for value in values]
        self.tombstones += values.count(None)
        self.entries += count
        cumulative = list(accumulate(map(add, map(len, keys), value_sizes), initial=0))
        self.raw_bytes += cumulative[-1]
        position = 0
        while position < count:
            room = self._block_bytes - self._pending_bytes
            # The first entry that fills the block closes it (a block holds at least one entry).
            end = bisect_left(cumulative, cumulative[position] + room, position + 1)
            if end > count:
                self._pending_keys += keys[position:]
                self._pending_values += values[position:]
                self._pending_bytes += cumulative[count] - cumulative[position]
                return
            self._pending_keys += keys[position:end]
            self._pending_values += values[position:end]
            self._pending_bytes += cumulative[end] - cumulative[position]
            self._emit_block()
            position = end

    def _emit_block(self) -> None:
        keys, values = self._pending_keys, self._pending_values
        stored = seal_block(encode_block(keys, values), self._compressor)
        offset = self._offset + len(self._buffer)
        self._buffer += stored
        self._index_keys.append(keys[-1])
        self._index_handles.append(encode_handle(offset, len(stored) - 5))
        self._pending_keys, self._pending_values, self._pending_bytes = [], [], 0
        if len(self._buffer) >= _WRITE_CHUNK:
            self._write_out()

    def _write_out(self) -> None:
        if not self._buffer or self._fd is None:
            return
        view = memoryview(self._buffer)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            self.abandon()
            raise map_os_error(exc, f"writing {self.temp_path}") from exc
        finally:
            view.release()
        self._offset += len(self._buffer)
        self._buffer = bytearray()

    def _append_block(self, body: bytes) -> tuple[int, int]:
        offset = self._offset + len(self._buffer)
        self._buffer += seal_block(body, None)
        return offset, len(body)

    def finish(
        self, *, min_lsn: int, max_lsn: int, durable_lsn: int, lineage: dict[str, Any] | None = None
    ) -> TableMeta:
        """Write filter, properties, index and footer; fsync; rename into place."""
        if self._first_key is None or self._last_key is None:
            self.abandon()
            raise InvalidArgumentError(f"table {self.number} has no entries")
        if self._pending_keys:
            self._emit_block()
        bloom = self._append_block(
            build_bloom(self._hashes, self.entries, self._bloom_bits) if self._bloom_bits else b""
        )
        created = time.time()
        properties = {
            "format_version": FORMAT_VERSION,
            "number": self.number,
            "level": self.level,
            "entries": self.entries,
            "tombstones": self.tombstones,
            "data_blocks": len(self._index_keys),
            "raw_bytes": self.raw_bytes,
            "min_key": self._first_key.hex(),
            "max_key": self._last_key.hex(),
            "min_lsn": min_lsn,
            "max_lsn": max_lsn,
            "durable_lsn": durable_lsn,
            "compression": self._compression,
            "bloom_bits_per_key": self._bloom_bits,
            "created_at": created,
            "lineage": lineage or {},
        }
        props = self._append_block(json.dumps(properties, sort_keys=True).encode("utf-8"))
        index = self._append_block(encode_block(self._index_keys, list(self._index_handles)))
        self._buffer += encode_footer(Footer(index, bloom, props))
        size = self._offset + len(self._buffer)
        self._write_out()
        fd = self._fd
        assert fd is not None
        try:
            fsio.fsync(fd)
            os.close(fd)
            self._fd = None
            fsio.rename(self.temp_path, self.path)
        except OSError as exc:
            self.abandon()
            raise map_os_error(exc, f"finishing {self.path}") from exc
        return TableMeta(
            number=self.number,
            level=self.level,
            size=size,
            entries=self.entries,
            tombstones=self.tombstones,
            min_key=self._first_key,
            max_key=self._last_key,
            min_lsn=min_lsn,
            max_lsn=max_lsn,
            durable_lsn=durable_lsn,
            lineage=lineage or {},
        )

    def abandon(self) -> None:
        """Close and remove the temporary file (our own partial output, never user data)."""
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
        try:
            self.temp_path.unlink()
        except FileNotFoundError:
            pass
