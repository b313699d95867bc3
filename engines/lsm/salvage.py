"""Salvage what a damaged SSTable still holds into a new table.

A flipped byte fails one data block's checksum (4 KiB of a table); every other block still checks.
Dropping the whole table lost all of it whenever the WAL no longer covered its writes (3,000 keys
for one 448-byte block in a console run). RocksDB's RepairDB likewise keeps what it can read of a
table. The new table keeps the damaged one's level and LSN range, so it takes the same place in the
tree: newer tables still shadow it, and its entries shadow older ones as before. Only the entries
of the damaged blocks are lost, and the report names their key range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engines.lsm.sstable_reader import TableCorruptionError, open_table
from engines.lsm.sstable_writer import TableWriter
from engines.lsm.table_meta import SSTABLE_DIR, TableMeta

__all__ = ["Salvaged", "salvage_table"]


@dataclass
class Salvaged:
    meta: TableMeta | None  # the new table; None when no block could be read
    kept: int = 0  # entries copied into it
    lost: int = 0  # entries of the damaged blocks (the table's count minus those kept)
    # Each damaged block's keys: (low, high, low included); a block holds the keys after the previous
    # block's last (the index's key) up to its own; the first block starts at the table's first key.
    bad_ranges: list[tuple[bytes, bytes, bool]] = field(default_factory=list)


def salvage_table(quarantine: Path, number: int, data_dir: Path, new_number: int) -> Salvaged:
    """Copy every sound block of table ``number`` (moved to ``quarantine``) into ``new_number``.

    Raises:
        TableCorruptionError: the table's footer, properties or index cannot be read (nothing to
            go by; the caller keeps it in quarantine whole).
    """
    reader = open_table(quarantine, number)
    meta = reader.meta
    writer = TableWriter(data_dir / SSTABLE_DIR, new_number, level=meta.level)
    result = Salvaged(meta=None)
    try:
        for index, last_key in enumerate(reader.index_keys):
            try:
                keys, values = reader.raw_block(index)
            except TableCorruptionError:
                keys = []
            if not keys or keys[-1] != last_key:  # damaged, or not the block the index names
                low, included = (reader.index_keys[index - 1], False) if index else (meta.min_key, True)
                result.bad_ranges.append((low, last_key, included))
                continue
            writer.add_many(keys, values)
            result.kept += len(keys)
    except BaseException:
        writer.abandon()
        reader.close()
        raise
    reader.close()
    result.lost = max(0, meta.entries - result.kept)
    if result.kept == 0:
        writer.abandon()
        return result
    result.meta = writer.finish(
        min_lsn=meta.min_lsn, max_lsn=meta.max_lsn, durable_lsn=meta.durable_lsn, lineage={"salvaged_from": meta.number}
    )
    return result
