"""Backups, WAL archiving, verification, restore and point-in-time recovery for every backend.

    from engines.backup import create_backup, restore_backup, verify_repository
    create_backup("/backup/orders-a", data_dir="/var/lib/drconsole/orders-a")          # full
    create_backup("/backup/orders-a", data_dir=..., incremental=True)                  # sealed WAL
    verify_repository("/backup/orders-a")                                             # no restore
    restore_backup("/backup/orders-a", "/srv/staging/orders-a", until_ns=...)         # PITR

Modules: ``repository`` (layout, lock, finding backups), ``metadata`` (the JSON beside each
backup), ``pack`` (tar + zstd + SHA256SUMS), ``archive`` (the WAL archive), ``create``,
``verify``, ``restore``, ``pitr``, ``retention``, ``schedule``, ``progress``, ``errors``.

The names load on first use (PEP 562), each from its own module: ``backup verify`` never imports
what ``backup create`` needs (the engines, the packer's writer) and the reverse.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engines.backup.archive import ArchivedSegment, WalArchive, attach_archiver
    from engines.backup.create import BackupResult, create_backup
    from engines.backup.errors import (
        ArchiveConflictError,
        BackupCorruptionError,
        BackupNotFoundError,
        RecoveryTargetError,
        RepositoryError,
        RestoreRefusedError,
        SourceLockedError,
    )
    from engines.backup.listing import BackupAges, BackupListing, backup_ages, list_backups
    from engines.backup.metadata import BackupMetadata, iso_utc, parse_iso_utc
    from engines.backup.progress import ProgressEvent
    from engines.backup.repository import Repository
    from engines.backup.restore import RestoreResult, restore_backup
    from engines.backup.retention import PrunePlan, RetentionPolicy, prune_repository
    from engines.backup.schedule import Schedule, build_schedule, install_schedule
    from engines.backup.verify import VerifyResult, verify_repository

__all__ = [
    "ArchiveConflictError",
    "ArchivedSegment",
    "BackupAges",
    "BackupCorruptionError",
    "BackupListing",
    "BackupMetadata",
    "BackupNotFoundError",
    "BackupResult",
    "ProgressEvent",
    "PrunePlan",
    "RecoveryTargetError",
    "Repository",
    "RepositoryError",
    "RestoreRefusedError",
    "RestoreResult",
    "RetentionPolicy",
    "Schedule",
    "SourceLockedError",
    "VerifyResult",
    "WalArchive",
    "attach_archiver",
    "backup_ages",
    "build_schedule",
    "create_backup",
    "install_schedule",
    "iso_utc",
    "list_backups",
    "parse_iso_utc",
    "prune_repository",
    "restore_backup",
    "verify_repository",
]

_HOMES = {
    "ArchiveConflictError": "engines.backup.errors",
    "ArchivedSegment": "engines.backup.archive",
    "BackupAges": "engines.backup.listing",
    "BackupCorruptionError": "engines.backup.errors",
    "BackupListing": "engines.backup.listing",
    "BackupMetadata": "engines.backup.metadata",
    "BackupNotFoundError": "engines.backup.errors",
    "BackupResult": "engines.backup.create",
    "ProgressEvent": "engines.backup.progress",
    "PrunePlan": "engines.backup.retention",
    "RecoveryTargetError": "engines.backup.errors",
    "Repository": "engines.backup.repository",
    "RepositoryError": "engines.backup.errors",
    "RestoreRefusedError": "engines.backup.errors",
    "RestoreResult": "engines.backup.restore",
    "RetentionPolicy": "engines.backup.retention",
    "Schedule": "engines.backup.schedule",
    "SourceLockedError": "engines.backup.errors",
    "VerifyResult": "engines.backup.verify",
    "WalArchive": "engines.backup.archive",
    "attach_archiver": "engines.backup.archive",
    "backup_ages": "engines.backup.listing",
    "build_schedule": "engines.backup.schedule",
    "create_backup": "engines.backup.create",
    "install_schedule": "engines.backup.schedule",
    "iso_utc": "engines.backup.metadata",
    "list_backups": "engines.backup.listing",
    "parse_iso_utc": "engines.backup.metadata",
    "prune_repository": "engines.backup.retention",
    "restore_backup": "engines.backup.restore",
    "verify_repository": "engines.backup.verify",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'engines.backup' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
