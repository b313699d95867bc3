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
import re
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from engines.backup.errors import BackupCorruptionError
from engines.errors import InvalidArgumentError, map_os_error
from engines.fsutil import atomic_write_text

Tier = Literal["daily", "weekly", "monthly"]

__all__ = [
    "Tier",
    "METADATA_SUFFIX",
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
FORMAT_VERSION = 1


def now_ns() -> int:
    """The wall clock in nanoseconds, the clock WAL records are stamped with."""
    return time.time_ns()


def iso_utc(ns: int) -> str:
    """``2026-11-23T13:47:47.123456Z`` for a time in nanoseconds since the epoch."""
    seconds, remainder = divmod(ns, 1_000_000_000)
    moment = dt.datetime.fromtimestamp(seconds, dt.timezone.utc)
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
        raw = raw[: match.start()] + raw[match.end():]
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidArgumentError(f"{text!r} is not an ISO 8601 time",
                                   hint="write it as 2026-11-23T14:30:00Z (UTC)") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
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


class BackupMetadata(BaseModel):
    """One backup's metadata file."""

    model_config = ConfigDict(extra="allow")

    backup_id: str
    type: Literal["full", "incremental"]
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
    restorability: Literal["UNVERIFIED", "VERIFIED", "CORRUPT"] = "UNVERIFIED"
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
    segments: list[str] = []
    verified_at: str | None = None

    @property
    def started_ns(self) -> int:
        return self.timestamp_ns

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


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
        return BackupMetadata.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise BackupCorruptionError(f"metadata file {path} is not valid JSON: {exc.msg} at line {exc.lineno}",
                                    file=str(path), hint="the archive may still be sound: run `backup verify`") from exc
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "(root)"
        raise BackupCorruptionError(f"metadata file {path}: field {field!r}: {error['msg']}", file=str(path),
                                    hint="the archive may still be sound: run `backup verify`") from exc


def write_metadata(path: Path, metadata: BackupMetadata) -> None:
    atomic_write_text(path, json.dumps(metadata.to_json(), indent=2) + "\n")
