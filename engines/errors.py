"""The root of drconsole's errors, and the engines' own hierarchy under it.

``DrconsoleError`` carries what the CLI prints (``message``, ``hint``) and the exit code it maps to;
the CLI catches it once. Under it stand the engines' failures (``EngineError``, below), the
playbook layer's (``playbooks.errors.PlaybookError``) and the console's bad configuration
(``console.config.ConfigError``): a wrong playbook parameter is not an engine failure.

Every failure an engine, the WAL, a backup or a node client can raise is an ``EngineError``;
third-party exceptions (rocksdict raises bare ``Exception``, the OS raises ``OSError``) are mapped
at the boundary with ``raise ... from exc`` so callers never see them.

    DrconsoleError                   root; ``exit_code`` is the CLI exit code it maps to
    EngineError                      the engines' failures
    ├── InvalidArgumentError         bad input from the caller (key type, size, option)   -> 2
    ├── NotFoundError                data dir / file missing, not an engine dir             -> 3
    │   └── BackendMismatchError     dir holds another backend than asked for              -> 3
    ├── UnsupportedFormatError       format version from the future, page size mismatch    -> 3
    ├── LockedError                  another process holds the data dir                    -> 3
    ├── ClosedError                  engine used after close()                              -> 2
    ├── CorruptionError              a checksum or structural check failed                 -> 1
    │   └── WalCorruptionError       the WAL, with segment/offset/reason                   -> 1
    ├── DiskFullError                ENOSPC or quota; nothing half-written is left         -> 1
    │   └── WalHeldError             WAL waiting for the archive reached its ceiling        -> 1
    ├── StorageIOError               any other OS-level failure                            -> 3
    ├── ReadOnlyError                write attempted in read-only mode                     -> 4
    ├── FencedError                  node fenced by a higher epoch                         -> 4
    └── SafetyRefusal                refused: would lose data / not confirmed              -> 4
"""

from __future__ import annotations

import errno

__all__ = [
    "DrconsoleError",
    "EngineError",
    "InvalidArgumentError",
    "NotFoundError",
    "BackendMismatchError",
    "UnsupportedFormatError",
    "LockedError",
    "ClosedError",
    "CorruptionError",
    "WalCorruptionError",
    "DiskFullError",
    "WalHeldError",
    "StorageIOError",
    "ReadOnlyError",
    "FencedError",
    "SafetyRefusal",
    "map_os_error",
]


class DrconsoleError(Exception):
    """Base of every error drconsole reports. ``hint`` tells the user what to do next."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class EngineError(DrconsoleError):
    """A failure of an engine, the WAL, a backup, or a node and its client."""


class InvalidArgumentError(EngineError, ValueError):
    exit_code = 2


class NotFoundError(EngineError):
    exit_code = 3


class BackendMismatchError(NotFoundError):
    exit_code = 3


class UnsupportedFormatError(EngineError):
    exit_code = 3


class LockedError(EngineError):
    exit_code = 3


class ClosedError(EngineError):
    exit_code = 2


class CorruptionError(EngineError):
    """A checksum or invariant failed. ``file`` and ``offset`` locate it when known."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        offset: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.file = file
        self.offset = offset


class WalCorruptionError(CorruptionError):
    """WAL corruption: ``segment`` (file name), ``offset`` (bytes) and ``reason``."""

    def __init__(self, segment: str, offset: int, reason: str, *, hint: str | None = None) -> None:
        super().__init__(
            f"WAL corruption in {segment} at offset {offset}: {reason}",
            file=segment,
            offset=offset,
            hint=hint or "run `drconsole wal validate` and `drconsole wal truncate --yes`",
        )
        self.segment = segment
        self.reason = reason


class DiskFullError(EngineError):
    exit_code = 1


class WalHeldError(DiskFullError):
    """Writes refused: the WAL kept for an unreachable archive reached the configured ceiling.

    The ceiling is kept below the disk's size: past it the data dir would fill up with WAL that must not
    be recycled before it is archived, so the refusal comes first, with room to spare.
    """


class StorageIOError(EngineError):
    exit_code = 3


class ReadOnlyError(EngineError):
    exit_code = 4


class FencedError(EngineError):
    exit_code = 4


class SafetyRefusal(EngineError):
    exit_code = 4


def map_os_error(exc: OSError, what: str) -> EngineError:
    """Turn an ``OSError`` met while doing ``what`` into the matching engine error."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"no space left while {what}", hint="free disk space or compact, then retry")
    if exc.errno == errno.ENOENT:
        return NotFoundError(f"{what}: {exc.filename or ''} does not exist".strip())
    if exc.errno == errno.EROFS:
        return StorageIOError(
            f"{what}: {exc.filename or 'the path'} is on a read-only file system",
            hint="remount it read-write (or pick a writable path); permissions are not the problem",
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return StorageIOError(
            f"{what}: permission denied on {exc.filename or 'path'}",
            hint="check ownership and mode (ls -l), or run as the data dir's owner",
        )
    return StorageIOError(f"{what}: {exc.strerror or exc}")
