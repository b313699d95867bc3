"""Reseeding a standby from a full backup: which backup, and what the node reports about it.

A standby reseeds when no WAL source reaches back to the record it needs next (the primary
recycled the segment and the WAL archive does not hold it either), or when it starts empty and
its backup repository holds a full backup. ``Node.reseed`` does the swap with
``engines.backup.restore_backup(..., replace=True)``: the backup is unpacked and checked in a
staging dir beside the data dir, swapped in atomically, and the old data dir goes to
``<parent>/.quarantine/pre-restore-<ts>-<name>`` (never deleted). The follower then goes on from
the backup's LSN: the archive first, then the primary.

A backup is only useful when it is ahead of what the standby holds, not ahead of the primary (a
backup past the primary's last LSN is another history), and on the primary's timeline: a backup
taken by an old primary after the failover point holds records the new primary never had. The
backup's epoch is read from the ``drconsole.json`` at the head of its archive (root files come
first in the tar, so this reads a few KiB) and checked against the timeline history the standby
adopted from its primary. What this cannot see, the primary still refuses (``check_follower``):
the standby then reports ``refused`` rather than apply anything.
"""

from __future__ import annotations

import json
import tarfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import zstandard

from engines.backup.errors import BackupNotFoundError
from engines.backup.metadata import BackupMetadata
from engines.backup.mirror import working_copy
from engines.backup.pack import DATA_PREFIX
from engines.backup.repository import Repository
from engines.backup.restore import archive_checksum
from engines.errors import EngineError
from engines.marker import MARKER_NAME
from engines.node.errors import ReplicationError
from engines.node.state import TimelineEntry, switch_lsn

__all__ = ["ReseedReport", "choose_backup"]


@dataclass
class ReseedReport:
    """The last reseed of this node, as ``/replication`` shows it under ``reseed``."""

    state: str  # reseeding, reseeded, failed
    reason: str
    repo: str
    backup_id: str | None = None
    lsn: int | None = None  # the LSN the backup holds: following resumes after it
    previous_lsn: int | None = None
    quarantine: str | None = None
    error: str | None = None
    started_at: float = 0.0
    finished_at: float | None = None
    duration_seconds: float | None = None

    def finish(self, state: str, *, error: str | None = None) -> None:
        self.state = state
        self.error = error
        self.finished_at = time.time()
        self.duration_seconds = round(self.finished_at - self.started_at, 3)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def backup_epoch(repo: Repository, backup_id: str) -> int | None:
    """The epoch in a full backup's ``drconsole.json``; None when it cannot be read."""
    try:
        archive, _checksum = archive_checksum(repo.find(backup_id))
        with open(archive, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as stream:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    if member.name == f"{DATA_PREFIX}/{MARKER_NAME}":
                        handle = tar.extractfile(member)
                        epoch = json.loads(handle.read()).get("epoch") if handle is not None else None
                        return epoch if isinstance(epoch, int) else None
                    if member.isdir() and member.name != DATA_PREFIX:
                        return None  # past the root files: no marker there
    except (OSError, ValueError, tarfile.TarError, zstandard.ZstdError, EngineError):
        return None
    return None


def choose_backup(
    repo_path: Path, *, applied_lsn: int, backend: str, primary_lsn: int | None, history: Sequence[TimelineEntry] = ()
) -> BackupMetadata:
    """The newest full backup in ``repo_path`` that moves a standby at ``applied_lsn`` forward.

    ``history``: the primary's timeline; a backup whose epoch forked off it before its LSN is skipped.

    Raises:
        ReplicationError: the repository cannot be read, or holds no such backup (the message
            says what it holds).
        RepositoryError: the repository does not exist.
    """

    def candidates(local: Path) -> set[str]:  # the archives whose epoch may be read (a remote repository)
        return {
            f"{entry.tier}/{entry.backup_id}"
            for entry in Repository.open(local).backups()
            if entry.metadata is not None and entry.metadata.type == "full" and entry.metadata.lsn_end > applied_lsn
        }

    with working_copy(repo_path, write=False, archives_for=candidates if history else None) as local:
        return _choose(Repository.open(local), applied_lsn, backend, primary_lsn, history)


def _choose(
    repo: Repository, applied_lsn: int, backend: str, primary_lsn: int | None, history: Sequence[TimelineEntry]
) -> BackupMetadata:
    fulls = repo.full_backups()
    if not fulls:
        raise BackupNotFoundError(
            f"backup repository {repo.location} holds no full backup",
            hint="take one on the primary: `POST /admin/backup` or `drconsole backup create`",
        )
    usable = [
        meta for meta in fulls if meta.lsn_end > applied_lsn and (primary_lsn is None or meta.lsn_end <= primary_lsn)
    ]
    if not usable:
        newest = max(fulls, key=lambda meta: meta.lsn_end)
        raise ReplicationError(
            f"no full backup in {repo.location} is past this standby's LSN {applied_lsn}"
            + (f" and within the primary's {primary_lsn}" if primary_lsn is not None else "")
            + f" (newest: {newest.backup_id} at LSN {newest.lsn_end})",
            hint="take a new full backup of the primary, then the standby reseeds from it",
        )
    skipped = []
    for chosen in sorted(usable, key=lambda meta: (meta.lsn_end, meta.timestamp_ns), reverse=True):
        epoch = backup_epoch(repo, chosen.backup_id) if history else None
        fork = None if epoch is None else switch_lsn(list(history), epoch)
        if fork is None or chosen.lsn_end <= fork:
            break
        skipped.append(f"{chosen.backup_id} (epoch {epoch}, LSN {chosen.lsn_end}, past the fork at LSN {fork})")
    else:
        raise ReplicationError(
            f"every full backup in {repo.location} past LSN {applied_lsn} is from another timeline: "
            + "; ".join(skipped),
            hint="take a new full backup of the current primary",
        )
    if chosen.engine != backend:
        raise ReplicationError(
            f"the newest usable backup {chosen.backup_id} is of a {chosen.engine} data dir; this standby is {backend}",
            hint="reseed by hand: restore the backup into a new data dir and serve that",
        )
    return chosen
