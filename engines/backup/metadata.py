"""The metadata JSON beside each backup, in the shape of the THE_BOT reference, and UTC time helpers.

The reference fields come first (``backup_id, type, engine, timestamp, size_bytes, size_readable,
duration_seconds, files, checksum, lsn_start, lsn_end, verified, retention, restorability``);
drconsole adds what point-in-time recovery and retention need (nanosecond times, the tier, the
archive name). Unknown fields are kept, so a file written by a newer drconsole survives a rewrite.

LSNs of a full backup: ``lsn_end`` is the LSN the checkpoint holds exactly; ``lsn_start`` is the
first LSN of the WAL it carries (what recovery of the checkpoint replays from, as a PostgreSQL
base backup's start LSN), or ``lsn_end`` when it carries none. For an incremental backup they are
the first and last LSN of the WAL segments it archived.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from engines.backup.errors import BackupCorruptionError
from engines.errors import InvalidArgumentError, map_os_error
from engines.fsutil import atomic_write_text

Tier = Literal["daily", "weekly", "monthly"]

__all__ = [
    "Tier",
    "METADATA_SUFFIX",
    "FORMAT_VERSION",
    "BackupMetadata",
    "metadata_name",
    "read_metadata",
    "write_metadata",
    "iso_utc",
    "parse_iso_utc",
    "size_readable",
    "now_ns",
]

METADATA_SUFFIX = ".metadata.json"
# The backup format. 1: a full backup's archive ends with a SHA256SUMS member listing every file's
# SHA-256. 2 (since 2026-12-07): it does not. The SHA-256 of the whole archive beside it and zstd's
# content checksum cover the same bytes; hashing every file again cost a create a quarter of its
# time. Both are read; a backup of a newer format is refused, not misread.
FORMAT_VERSION = 2
MEMBER_SUMS_UNTIL = 1


def now_ns() -> int:
    """The wall clock in nanoseconds, the clock WAL records are stamped with."""
    return time.time_ns()


def iso_utc(ns: int) -> str:
    """``2026-11-23T13:47:47.123456Z`` for a time in nanoseconds since the epoch."""
    seconds, remainder = divmod(ns, 1_000_000_000)
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{remainder // 1000:06d}Z"


_FRACTION = re.compile(r"\.(\d+)")


def parse_iso_utc(text: str) -> int:
    """Nanoseconds since the epoch for an ISO 8601 time; no zone means UTC.

    Accepts ``2026-11-23T14:30:00Z``, ``2026-11-23 14:30:00`` (the reference scripts' spelling),
    offsets such as ``+02:00``, and fractions down to nanoseconds.

    Raises:
        InvalidArgumentError: not an ISO 8601 time.
    """
    raw = text.strip()
    fraction_ns = 0
    match = _FRACTION.search(raw)
    if match is not None:
        digits = match.group(1)
        fraction_ns = int((digits + "000000000")[:9])
        raw = raw[: match.start()] + raw[match.end() :]
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidArgumentError(
            f"{text!r} is not an ISO 8601 time", hint="write it as 2026-11-23T14:30:00Z (UTC)"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    whole = int(moment.timestamp())
    return whole * 1_000_000_000 + fraction_ns


def size_readable(size: int) -> str:
    """``536870912`` -> ``512MB``, as the reference writes sizes (binary multiples)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            if unit == "B":
                return f"{int(value)}B"
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
        value /= 1024
    return f"{size}B"  # not reached


Restorability = Literal["UNVERIFIED", "VERIFIED", "CORRUPT"]
BackupType = Literal["full", "incremental"]
_CHOICES: dict[str, tuple[str, ...]] = {
    "BackupType": ("full", "incremental"),
    "Tier": ("daily", "weekly", "monthly"),
    "Restorability": ("UNVERIFIED", "VERIFIED", "CORRUPT"),
}


@dataclass(kw_only=True)
class BackupMetadata:
    """One backup's metadata file.

    A plain dataclass checked by ``from_json`` (not a pydantic model): ``backup verify`` and
    ``backup restore`` read it in short-lived processes where importing pydantic would cost more
    than the check itself. Fields a newer drconsole wrote are kept in ``extra`` and written back.
    """

    backup_id: str
    type: BackupType
    engine: str
    timestamp: str
    size_bytes: int
    size_readable: str
    duration_seconds: float
    files: list[str]
    checksum: str
    lsn_start: int
    lsn_end: int
    verified: bool = False
    retention: str
    restorability: Restorability = "UNVERIFIED"
    # drconsole's additions
    format_version: int = FORMAT_VERSION
    tier: Tier
    timestamp_ns: int
    lsn_end_time_ns: int
    """Wall time of the record ``lsn_end`` when known, else the moment the backup completed:
    every record the backup holds was written at or before it (PITR picks bases by it)."""
    node_name: str = ""
    source: str = ""
    source_bytes: int = 0
    file_count: int = 0
    compression: str = "zstd"
    archive: str | None = None
    base_backup_id: str | None = None
    segments: list[str] = field(default_factory=list)
    verified_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def started_ns(self) -> int:
        return self.timestamp_ns

    @property
    def member_sums(self) -> bool:
        """Whether the archive (of a full backup) ends with a SHA256SUMS of its files."""
        return self.format_version <= MEMBER_SUMS_UNTIL

    def format_problem(self) -> str | None:
        """Why this drconsole cannot read the backup, when it was written in a newer format."""
        if self.format_version <= FORMAT_VERSION:
            return None
        return (
            f"written in backup format {self.format_version} by a newer drconsole; "
            f"this one reads formats 1 to {FORMAT_VERSION}"
        )

    def to_json(self) -> dict[str, Any]:
        body = {item.name: getattr(self, item.name) for item in fields(self) if item.name != "extra"}
        body["files"], body["segments"] = list(self.files), list(self.segments)
        return {**body, **{key: value for key, value in self.extra.items() if key not in body}}

    @classmethod
    def from_json(cls, raw: object) -> BackupMetadata:
        """Check and build; ``ValueError`` names the first bad field."""
        if not isinstance(raw, dict):
            raise ValueError("field '(root)': not a JSON object")
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name == "extra":
                continue
            if item.name not in raw:
                if item.default is MISSING and item.default_factory is MISSING:
                    raise ValueError(f"field {item.name!r}: Field required")
                continue
            values[item.name] = _checked(item.name, str(item.type), raw[item.name])
        known = {item.name for item in fields(cls)}
        return cls(**values, extra={key: value for key, value in raw.items() if key not in known})


_MAX_INT = 2**63 - 1


def _checked(name: str, kind: str, value: Any) -> Any:
    """``value`` as the field's type (JSON's numbers: an int is a valid float), else ValueError."""
    optional = kind.endswith(" | None")
    kind = kind.removesuffix(" | None")
    if value is None and optional:
        return None
    if kind in _CHOICES and value in _CHOICES[kind]:
        return value
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= _MAX_INT:  # LSNs and nanosecond times are 64-bit; no count is negative
            raise ValueError(f"field {name!r}: {str(value)[:40]} is out of range (0 to 2**63-1)")
        return value
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or not 0 <= value <= _MAX_INT:
            raise ValueError(f"field {name!r}: {str(value)[:40]} is out of range")
        return float(value)
    if kind == "list[str]" and isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    wanted = f"one of {', '.join(_CHOICES[kind])}" if kind in _CHOICES else f"a valid {kind}"
    raise ValueError(f"field {name!r}: Input should be {wanted}, not {value!r}")


def metadata_name(backup_id: str) -> str:
    return f"{backup_id}{METADATA_SUFFIX}"


def read_metadata(path: Path) -> BackupMetadata:
    """Parse one metadata file.

    Raises:
        BackupCorruptionError: the file does not parse or lacks a field (named in the message).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise BackupCorruptionError(f"metadata file {path} is missing", file=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        if isinstance(exc, OSError):
            raise map_os_error(exc, f"reading {path}") from exc
        raise BackupCorruptionError(f"metadata file {path} is not UTF-8 text", file=str(path)) from exc
    try:
        return BackupMetadata.from_json(json.loads(text))
    except json.JSONDecodeError as exc:
        raise BackupCorruptionError(
            f"metadata file {path} is not valid JSON: {exc.msg} at line {exc.lineno}",
            file=str(path),
            hint="the archive may still be sound: run `backup verify`",
        ) from exc
    except ValueError as exc:
        raise BackupCorruptionError(
            f"metadata file {path}: {exc}", file=str(path), hint="the archive may still be sound: run `backup verify`"
        ) from exc


def write_metadata(path: Path, metadata: BackupMetadata) -> None:
    atomic_write_text(path, json.dumps(metadata.to_json(), indent=2) + "\n")
