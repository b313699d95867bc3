"""Engine options: durability, WAL sizing, caches and the low-memory profile."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engines.archiving import DEFAULT_HOLD_MAX_BYTES

__all__ = ["EngineOptions", "LOW_MEMORY"]


class EngineOptions(BaseModel):
    """Options shared by every backend; ``backend`` holds backend-specific ones.

    They are saved in ``drconsole.json`` at creation, so a reopen behaves the same.
    """

    model_config = ConfigDict(extra="forbid")

    durability: Literal["sync", "async"] = "sync"
    async_interval_ms: int = Field(10, ge=1, le=10_000)
    wal_segment_bytes: int = Field(64 * 2**20, ge=64 * 1024)
    wal_buffer_bytes: int = Field(1 * 2**20, ge=4096)
    wal_recovery: Literal[
        "tolerate_corrupted_tail_records", "absolute_consistency", "point_in_time", "skip_any_corrupted_records"
    ] = "tolerate_corrupted_tail_records"
    wal_keep_segments: int = Field(2, ge=0)  # covered segments kept for standbys and the archiver
    # WAL kept for an unreachable archive beyond this many bytes makes writes fail (WalHeldError)
    # rather than fill the disk; a data dir without a backup repository holds none.
    wal_hold_max_bytes: int = Field(DEFAULT_HOLD_MAX_BYTES, ge=0)  # 0: no ceiling
    checkpoint_every_records: int = Field(1_000_000, ge=1)
    cache_bytes: int = Field(64 * 2**20, ge=0)
    low_memory: bool = False
    backend: dict[str, Any] = Field(default_factory=dict)


# The reference guide's low-memory profile (create_low_memory_config): small buffers and caches.
LOW_MEMORY: dict[str, Any] = {
    "low_memory": True,
    "cache_bytes": 8 * 2**20,
    "wal_buffer_bytes": 65536,
}
