"""Mapping of rocksdict's exceptions onto the engine error hierarchy.

rocksdict raises bare ``Exception`` whose message starts with RocksDB's status name ("Corruption:",
"IO error:", "Invalid argument:", ...) and ``DbClosedError`` once closed. Every call into rocksdict
goes through :func:`rocks_call`, so none of them reaches a caller unmapped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from rocksdict import DbClosedError

from engines.errors import (
    ClosedError,
    CorruptionError,
    DiskFullError,
    EngineError,
    InvalidArgumentError,
    LockedError,
    NotFoundError,
    StorageIOError,
    UnsupportedFormatError,
)

__all__ = ["map_rocksdb_error", "rocks_call"]

_FILE = re.compile(r"(/\S+?\.(?:sst|log|ldb)|/\S*MANIFEST-\d+|/\S*CURRENT)")
_OFFSET = re.compile(r"offset (\d+)")


def map_rocksdb_error(exc: BaseException, what: str) -> EngineError:
    """The engine error for a rocksdict exception raised while doing ``what``."""
    if isinstance(exc, EngineError):
        return exc
    if isinstance(exc, DbClosedError):
        return ClosedError(f"{what}: the RocksDB instance is closed")
    message = str(exc).strip() or type(exc).__name__
    lowered = message.lower()
    file_match = _FILE.search(message)
    offset_match = _OFFSET.search(message)
    if lowered.startswith("corruption") or "checksum mismatch" in lowered or "bad magic" in lowered:
        return CorruptionError(
            f"{what}: {message}",
            file=file_match.group(1) if file_match else None,
            offset=int(offset_match.group(1)) if offset_match else None,
            hint="run `drconsole engine verify`, then the recover-rocksdb playbook",
        )
    if "no space left" in lowered or "enospc" in lowered:
        return DiskFullError(f"{what}: {message}", hint="free disk space or compact, then retry")
    if "lock" in lowered and (
        "hold" in lowered or "resource temporarily unavailable" in lowered or "no locks available" in lowered
    ):
        return LockedError(
            f"{what}: the RocksDB directory is locked by another user",
            hint="stop the process that holds it, or open read-only",
        )
    if "no such file or directory" in lowered or "does not exist" in lowered:
        if file_match is not None and not file_match.group(1).endswith("CURRENT"):
            # CURRENT names a MANIFEST (or the MANIFEST a table) that is gone: the database is
            # damaged, not absent. That is what `repair` is for.
            return CorruptionError(
                f"{what}: a file the database refers to is missing: {message}",
                file=file_match.group(1),
                hint="run `drconsole engine repair --yes` (it keeps a safety copy)",
            )
        return NotFoundError(f"{what}: {message}")
    if lowered.startswith("invalid argument"):
        if "not compatible" in lowered or "format" in lowered or "version" in lowered:
            return UnsupportedFormatError(f"{what}: {message}")
        return InvalidArgumentError(f"{what}: {message}")
    if lowered.startswith("not implemented") or "unsupported" in lowered:
        return UnsupportedFormatError(f"{what}: {message}")
    if isinstance(exc, (TypeError, ValueError)):
        return InvalidArgumentError(f"{what}: {message}")
    # "IO error", "Busy", "Aborted", "TimedOut", "Incomplete", "ShutdownInProgress", anything new.
    return StorageIOError(f"{what}: {message}")


@contextmanager
def rocks_call(what: str) -> Iterator[None]:
    """Run a block of rocksdict calls; any exception leaves it as an engine error."""
    try:
        yield
    except EngineError:
        raise
    except Exception as exc:  # rocksdict raises bare Exception: this is the boundary
        raise map_rocksdb_error(exc, what) from exc
