"""The LSM backend's tunables, read from ``EngineOptions.backend`` (and the low-memory profile).

    memtable_bytes     write buffer size; a full memtable is frozen and flushed to L0
    levels             number of levels, L0 included
    level_multiplier   each level below L1 may hold this many times the bytes of the one above
    level_base_bytes   target size of L1 (default: memtable_bytes * l0_trigger)
    l0_trigger         L0 tables that trigger an L0 -> L1 compaction
    target_file_bytes  compaction output is split into tables of about this size
    block_bytes        uncompressed size a data block is cut at
    compression        "zstd" or "none" (data blocks only)
    compression_level  zstd level
    bloom_bits_per_key bits of bloom filter per key (0: no filter)
    max_immutable      frozen memtables waiting for flush before writers wait

The guide's low-memory profile (``options.low_memory``): 16 MB memtable, 5 levels, multiplier 8,
L0 trigger 2. Explicit ``backend`` values win over the profile.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from engines.errors import InvalidArgumentError
from engines.options import EngineOptions

__all__ = ["LsmSettings", "LOW_MEMORY_PROFILE", "settings_from_options"]

LOW_MEMORY_PROFILE: dict[str, Any] = {
    "memtable_bytes": 16 * 2**20,
    "levels": 5,
    "level_multiplier": 8,
    "l0_trigger": 2,
}


@dataclass(frozen=True)
class LsmSettings:
    memtable_bytes: int = 64 * 2**20
    levels: int = 7
    level_multiplier: int = 10
    level_base_bytes: int = 0  # 0: memtable_bytes * l0_trigger
    l0_trigger: int = 4
    target_file_bytes: int = 0  # 0: max(memtable_bytes, 2 MiB)
    block_bytes: int = 4096
    compression: str = "zstd"
    compression_level: int = 1
    bloom_bits_per_key: int = 10
    max_immutable: int = 2
    cache_bytes: int = 64 * 2**20

    @property
    def level1_bytes(self) -> int:
        return self.level_base_bytes or self.memtable_bytes * self.l0_trigger

    @property
    def file_bytes(self) -> int:
        return self.target_file_bytes or max(self.memtable_bytes, 2 * 2**20)

    def level_target(self, level: int) -> int:
        """Bytes level ``level`` (>= 1) may hold before it is compacted into the next."""
        return self.level1_bytes * self.level_multiplier ** (level - 1)


_LIMITS: dict[str, tuple[int, int]] = {
    "memtable_bytes": (4096, 2**34),
    "levels": (2, 20),
    "level_multiplier": (2, 1000),
    "level_base_bytes": (0, 2**50),
    "l0_trigger": (1, 1000),
    "target_file_bytes": (0, 2**34),
    "block_bytes": (256, 2**24),
    "compression_level": (-7, 22),
    "bloom_bits_per_key": (0, 64),
    "max_immutable": (1, 64),
    "cache_bytes": (0, 2**50),
}


def settings_from_options(options: EngineOptions) -> LsmSettings:
    """Resolve the LSM settings of ``options``; raises ``InvalidArgumentError`` on a bad one."""
    values: dict[str, Any] = {"cache_bytes": options.cache_bytes}
    if options.low_memory:
        values.update(LOW_MEMORY_PROFILE)
    known = {field.name for field in fields(LsmSettings)}
    for name, value in options.backend.items():
        if name not in known:
            raise InvalidArgumentError(
                f"unknown lsm option {name!r}", hint=f"known options: {', '.join(sorted(known))}"
            )
        values[name] = value
    for name, value in values.items():
        if name == "compression":
            if value not in ("zstd", "none"):
                raise InvalidArgumentError(f"lsm option compression must be 'zstd' or 'none', not {value!r}")
            continue
        low, high = _LIMITS[name]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise InvalidArgumentError(f"lsm option {name} must be an integer in [{low}, {high}], not {value!r}")
    return replace(LsmSettings(), **values)
