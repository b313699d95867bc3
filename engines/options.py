"""Engine options: durability, WAL sizing, caches and the low-memory profile."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from engines.archiving import DEFAULT_HOLD_MAX_BYTES
from engines.errors import UnsupportedFormatError
from engines.marker import MARKER_NAME, Marker
from engines.records import Record, check_bool, check_choice, check_int
from engines.wal.reader import RecoveryMode

__all__ = ["EngineOptions", "LOW_MEMORY"]

_WAL_RECOVERY_MODES = tuple(mode.value for mode in RecoveryMode)


@dataclass(kw_only=True)
class EngineOptions(Record):
    """Options shared by every backend; ``backend`` holds backend-specific ones.

    They are saved in ``drconsole.json`` at creation, so a reopen behaves the same. A dataclass,
    not a pydantic model: every engine open builds one (``engines.records`` says why). Values are
    checked (and whole numbers given as text or floats converted) when it is built; a bad one is a
    ``ValueError`` naming the field, on one line.
    """

    durability: str = "sync"
    async_interval_ms: int = 10
    wal_segment_bytes: int = 64 * 2**20
    wal_buffer_bytes: int = 1 * 2**20
    wal_recovery: str = "tolerate_corrupted_tail_records"
    wal_keep_segments: int = 2  # covered segments kept for standbys and the archiver
    # WAL kept for an unreachable archive beyond this many bytes makes writes fail (WalHeldError)
    # rather than fill the disk; a data dir without a backup repository holds none.
    wal_hold_max_bytes: int = DEFAULT_HOLD_MAX_BYTES  # 0: no ceiling
    checkpoint_every_records: int = 1_000_000
    cache_bytes: int = 64 * 2**20
    low_memory: bool = False
    backend: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.durability = check_choice("durability", self.durability, ("sync", "async"))
        self.async_interval_ms = check_int("async_interval_ms", self.async_interval_ms, ge=1, le=10_000)
        self.wal_segment_bytes = check_int("wal_segment_bytes", self.wal_segment_bytes, ge=64 * 1024)
        self.wal_buffer_bytes = check_int("wal_buffer_bytes", self.wal_buffer_bytes, ge=4096)
        self.wal_recovery = check_choice("wal_recovery", self.wal_recovery, _WAL_RECOVERY_MODES)
        self.wal_keep_segments = check_int("wal_keep_segments", self.wal_keep_segments, ge=0)
        self.wal_hold_max_bytes = check_int("wal_hold_max_bytes", self.wal_hold_max_bytes, ge=0)
        self.checkpoint_every_records = check_int("checkpoint_every_records", self.checkpoint_every_records, ge=1)
        self.cache_bytes = check_int("cache_bytes", self.cache_bytes, ge=0)
        self.low_memory = check_bool("low_memory", self.low_memory)
        if not isinstance(self.backend, dict):
            raise ValueError(f"backend: should be a dictionary, not {self.backend!r}")

    @classmethod
    def model_validate(cls, raw: object) -> EngineOptions:
        """Check and build from a mapping; unknown names are refused."""
        if isinstance(raw, EngineOptions):
            return raw
        if not isinstance(raw, dict):
            raise ValueError(f"engine options should be a dictionary, not {raw!r}")
        known = {item.name for item in fields(cls)}
        unknown = sorted(str(name) for name in raw if name not in known)
        if unknown:
            raise ValueError(f"{unknown[0]}: not an engine option (known: {', '.join(sorted(known))})")
        return cls(**raw)

    @classmethod
    def of_marker(cls, marker: Marker, data_dir: Path, *, durability: str | None = None) -> EngineOptions:
        """The options a data dir's marker records (``durability`` overriding its own).

        A bad one is the data dir's problem, not the caller's: ``UnsupportedFormatError``, as for a
        marker that does not parse, naming the option and the way out.
        """
        try:
            return cls.model_validate(marker.options | {"durability": durability or marker.durability})
        except ValueError as exc:
            raise UnsupportedFormatError(
                f"{Path(data_dir) / MARKER_NAME} holds a bad engine option: {exc}",
                hint="correct it there, or run the config-recovery playbook: it resets bad options to the defaults",
            ) from exc


# The reference guide's low-memory profile (create_low_memory_config): small buffers and caches.
LOW_MEMORY: dict[str, Any] = {
    "low_memory": True,
    "cache_bytes": 8 * 2**20,
    "wal_buffer_bytes": 65536,
}
