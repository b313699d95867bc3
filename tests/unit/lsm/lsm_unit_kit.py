"""Helpers of the LSM unit tests: write a table from a dict, flip bytes in a file."""

from __future__ import annotations

from pathlib import Path

from engines.lsm.sstable_writer import TableWriter
from engines.lsm.table_meta import SSTABLE_DIR, TableMeta


def write_table(
    data_dir: Path,
    number: int,
    entries: dict[bytes, bytes | None],
    *,
    level: int = 0,
    block_bytes: int = 512,
    compression: str = "none",
    min_lsn: int = 1,
    max_lsn: int = 10,
    chunk: int = 7,
    lineage: dict | None = None,
) -> TableMeta:
    """A table holding ``entries`` (sorted here), added in chunks of ``chunk`` entries."""
    (data_dir / SSTABLE_DIR).mkdir(parents=True, exist_ok=True)
    writer = TableWriter(data_dir / SSTABLE_DIR, number, level=level, block_bytes=block_bytes, compression=compression)
    keys = sorted(entries)
    for start in range(0, len(keys), chunk):
        part = keys[start : start + chunk]
        writer.add_many(part, [entries[key] for key in part])
    return writer.finish(min_lsn=min_lsn, max_lsn=max_lsn, durable_lsn=max_lsn, lineage=lineage)


def flip(path: Path, offset: int, mask: int = 0xFF) -> None:
    """XOR one byte of ``path`` in place (a real corrupted byte on disk)."""
    raw = bytearray(path.read_bytes())
    raw[offset] ^= mask
    path.write_bytes(bytes(raw))
