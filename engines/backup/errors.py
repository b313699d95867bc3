"""Errors of backups, verification, restore and point-in-time recovery.

Each one subclasses the engine error whose exit code it must carry, so the CLI maps them without
knowing this package::

    EngineError
    ├── InvalidArgumentError
    │   ├── BackupNotFoundError        no backup with that ID in the repository           -> 2
    │   └── RecoveryTargetError        a PITR target outside the recoverable window        -> 2
    ├── NotFoundError
    │   └── RepositoryError            repository missing, or a path that is not one       -> 3
    ├── LockedError
    │   └── SourceLockedError          the data dir is held by a running node              -> 3
    ├── CorruptionError
    │   └── BackupCorruptionError      a checksum, an archive or metadata does not hold    -> 1
    └── SafetyRefusal
        ├── RestoreRefusedError        restore over an existing or live data dir           -> 4
        └── ArchiveConflictError       the WAL archive holds a different history           -> 4
"""

from __future__ import annotations

from engines.errors import CorruptionError, InvalidArgumentError, LockedError, NotFoundError, SafetyRefusal

__all__ = [
    "BackupNotFoundError",
    "RecoveryTargetError",
    "RepositoryError",
    "SourceLockedError",
    "BackupCorruptionError",
    "RestoreRefusedError",
    "ArchiveConflictError",
]


class BackupNotFoundError(InvalidArgumentError):
    """The requested backup ID is not in the repository."""


class RecoveryTargetError(InvalidArgumentError):
    """A point-in-time target the repository cannot reach; the message states the window."""


class RepositoryError(NotFoundError):
    """The repository does not exist, or the path is not a drconsole backup repository."""


class SourceLockedError(LockedError):
    """``backup create`` needs the data dir read-write and a running node holds it."""


class BackupCorruptionError(CorruptionError):
    """A backup file fails its checksum, its decompression, or its metadata does not parse."""


class RestoreRefusedError(SafetyRefusal):
    """Restoring would overwrite a data dir that was not given up with ``--replace``, or is live."""


class ArchiveConflictError(SafetyRefusal):
    """A segment to archive clashes with one already archived (a diverged history)."""
