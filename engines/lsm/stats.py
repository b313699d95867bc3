"""The figures ``stats()`` reports for an LSM engine: levels, memory, flush and compaction work."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from engines.lsm.block_cache import BlockCache
from engines.lsm.manifest import Manifest
from engines.lsm.memtable import Memtable
from engines.lsm.settings import LsmSettings
from engines.lsm.version import Version

__all__ = ["WorkCounters", "describe"]


@dataclass
class WorkCounters:
    """Work done since open; bytes are table bytes written or read."""

    flushes: int = 0
    flush_bytes: int = 0
    flush_seconds: float = 0.0
    compactions: int = 0
    compaction_bytes_read: int = 0
    compaction_bytes_written: int = 0
    compaction_seconds: float = 0.0
    dropped_tombstones: int = 0


def describe(
    *,
    manifest: Manifest,
    version: Version,
    memtables: list[Memtable],
    cache: BlockCache,
    settings: LsmSettings,
    write_buffer_bytes: int,
    work: WorkCounters,
) -> dict[str, Any]:
    """Everything but the key count. Write amplification = table bytes written / bytes flushed."""
    readers = version.tables()
    figures = asdict(work)
    flushed = work.flush_bytes
    written = flushed + work.compaction_bytes_written
    metadata = sum(table.memory_bytes for table in readers)
    return {
        "memory_usage_bytes": sum(m.bytes for m in memtables) + cache.used_bytes + metadata,
        "levels": [
            {
                "level": n,
                "files": len(level),
                "bytes": sum(meta.size for meta in level),
                "target_bytes": settings.level_target(n) if n else None,
            }
            for n, level in enumerate(manifest.levels)
        ],
        "sstables": len(manifest.tables()),
        "sst_bytes": sum(meta.size for meta in manifest.tables()),
        "l0_files": len(manifest.levels[0]) if manifest.levels else 0,
        "durable_lsn": manifest.durable_lsn,
        "memtable_bytes": memtables[0].bytes,
        "immutable_memtables": len(memtables) - 1,
        "immutable_memtable_bytes": sum(m.bytes for m in memtables[1:]),
        "write_buffer_bytes": write_buffer_bytes,
        "block_cache_bytes": cache.used_bytes,
        "block_cache_capacity_bytes": cache.capacity_bytes,
        "block_cache_hits": cache.hits,
        "block_cache_misses": cache.misses,
        "table_metadata_bytes": metadata,
        **figures,
        "write_amplification": round(written / flushed, 3) if flushed else None,
        "compaction_mb_per_s": (
            round(work.compaction_bytes_written / 2**20 / work.compaction_seconds, 2)
            if work.compaction_seconds
            else None
        ),
        "damaged_tables": [table.meta.relative_path for table in readers if table.damaged],
    }
