"""Backups, WAL archiving, verification, restore and point-in-time recovery for every backend.

    from engines.backup import create_backup, restore_backup, verify_repository
    create_backup("/backup/orders-a", data_dir="/var/lib/drconsole/orders-a")          # full
    create_backup("/backup/orders-a", data_dir=..., incremental=True)                  # sealed WAL
    verify_repository("/backup/orders-a")                                             # no restore
    restore_backup("/backup/orders-a", "/srv/staging/orders-a", until_ns=...)         # PITR

Modules: ``repository`` (layout, lock, finding backups), ``metadata`` (the JSON beside each
backup), ``pack`` (tar + zstd + SHA256SUMS), ``archive`` (the WAL archive), ``create``,
``verify``, ``restore``, ``pitr``, ``retention``, ``schedule``, ``progress``, ``errors``.
"""

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
from engines.backup.listing import BackupListing, list_backups
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
