"""``backup list``: every backup with its age, size and verified state, and the WAL archive's reach."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.backup.archive import WalArchive
from engines.backup.copies import backups_in, copies_of
from engines.backup.errors import BackupCorruptionError
from engines.backup.metadata import iso_utc, now_ns, size_readable
from engines.backup.mirror import working_copy
from engines.backup.pitr import reaches, window_text
from engines.backup.repository import TIERS, Repository, backup_date
from engines.errors import InvalidArgumentError

__all__ = ["BackupListing", "BackupAges", "backup_ages", "list_backups"]


@dataclass
class BackupListing:
    repo: Path | str
    backups: list[dict[str, Any]] = field(default_factory=list)
    wal_segments: int = 0
    wal_first_lsn: int | None = None
    wal_last_lsn: int | None = None
    wal_bytes: int = 0
    window: str = ""
    copies: list[dict[str, Any]] = field(default_factory=list)
    """The repository's copies: ``{repo, reachable, backups}`` (engines/backup/copies.py)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "repo": str(self.repo),
            "backups": self.backups,
            "wal": {
                "segments": self.wal_segments,
                "first_lsn": self.wal_first_lsn,
                "last_lsn": self.wal_last_lsn,
                "bytes": self.wal_bytes,
            },
            "window": self.window,
            "copies": self.copies,
        }


@dataclass
class BackupAges:
    """The newest full backup of a repository and the newest one a full ``verify`` passed.

    What a node exports as ``drconsole_last_backup_age_seconds`` and
    ``drconsole_last_verified_backup_age_seconds``, and ``/health`` as ``backup``.
    """

    last_backup_id: str | None = None
    last_backup_ns: int | None = None
    verified: bool | None = None
    """Whether that newest full backup has passed a full verify."""
    last_verified_id: str | None = None
    last_verified_ns: int | None = None

    def age_seconds(self, now_ns: int) -> float | None:
        return None if self.last_backup_ns is None else max(0.0, (now_ns - self.last_backup_ns) / 1e9)

    def verified_age_seconds(self, now_ns: int) -> float | None:
        return None if self.last_verified_ns is None else max(0.0, (now_ns - self.last_verified_ns) / 1e9)

    def to_json(self, now_ns: int) -> dict[str, Any]:
        age, verified_age = self.age_seconds(now_ns), self.verified_age_seconds(now_ns)
        return {
            "last_backup_id": self.last_backup_id,
            "last_backup_at": None if self.last_backup_ns is None else iso_utc(self.last_backup_ns),
            "verified": self.verified,
            "age_seconds": None if age is None else round(age),
            "last_verified_id": self.last_verified_id,
            "last_verified_at": None if self.last_verified_ns is None else iso_utc(self.last_verified_ns),
            "verified_age_seconds": None if verified_age is None else round(verified_age),
        }


def _locate(repo: Repository, listing: BackupListing) -> None:
    """Where each backup is: this repository, and each of its copies that holds it."""
    copies = copies_of(repo.marker(), repo.location)
    held = {copy: backups_in(copy) for copy in copies}
    listing.copies = [
        {"repo": copy, "reachable": ids is not None, "backups": len(ids or ())} for copy, ids in held.items()
    ]
    for item in listing.backups:
        item["locations"] = [str(listing.repo)] + [
            copy for copy, ids in held.items() if ids is not None and item["backup_id"] in ids
        ]


def backup_ages(repo_path: str | Path) -> BackupAges:
    """The newest full backup of ``repo_path`` and the newest verified one (reads only metadata)."""
    with working_copy(repo_path, write=False) as local:
        fulls = [
            entry.metadata
            for entry in Repository.open(local).backups()
            if entry.metadata is not None and entry.metadata.type == "full"
        ]
    ages = BackupAges()
    if fulls:
        newest = max(fulls, key=lambda meta: meta.timestamp_ns)
        ages.last_backup_id, ages.last_backup_ns, ages.verified = newest.backup_id, newest.timestamp_ns, newest.verified
    verified = [meta for meta in fulls if meta.verified]
    if verified:
        newest = max(verified, key=lambda meta: meta.timestamp_ns)
        ages.last_verified_id, ages.last_verified_ns = newest.backup_id, newest.timestamp_ns
    return ages


def list_backups(repo_path: str | Path, *, tier: str | None = None, on_date: dt.date | None = None) -> BackupListing:
    """The repository's backups, oldest first (unreadable ones included, with their error).

    ``tier`` / ``on_date``: only the backups in that tier, taken on that UTC date.
    """
    if tier is not None and tier not in TIERS:
        raise InvalidArgumentError(f"no tier {tier!r}; the tiers are {', '.join(TIERS)}")
    with working_copy(repo_path, write=False) as local:
        return _list(Repository.open(local), tier, on_date)


def _list(repo: Repository, tier: str | None, on_date: dt.date | None) -> BackupListing:
    if tier is not None and tier not in TIERS:
        raise InvalidArgumentError(f"no tier {tier!r}; the tiers are {', '.join(TIERS)}")
    listing = BackupListing(repo.location)
    now = now_ns()
    for entry in repo.backups():
        if tier not in (None, entry.tier) or on_date not in (None, backup_date(entry)):
            continue
        meta = entry.metadata
        if meta is None:
            listing.backups.append(
                {
                    "backup_id": entry.backup_id,
                    "type": None,
                    "timestamp": None,
                    "size_bytes": None,
                    "lsn_start": None,
                    "lsn_end": None,
                    "verified": False,
                    "tier": entry.tier,
                    "error": entry.error.message if entry.error else "unreadable metadata",
                }
            )
            continue
        listing.backups.append(
            {
                "backup_id": meta.backup_id,
                "type": meta.type,
                "timestamp": meta.timestamp,
                "size_bytes": meta.size_bytes,
                "lsn_start": meta.lsn_start,
                "lsn_end": meta.lsn_end,
                "verified": meta.verified,
                "tier": entry.tier,
                "engine": meta.engine,
                "size_readable": size_readable(meta.size_bytes),
                "restorability": meta.restorability,
                "age_seconds": max(0, round((now - meta.timestamp_ns) / 1e9, 1)),
                "path": repo.shown(entry.path),
            }
        )
    _locate(repo, listing)
    archive = WalArchive(repo)
    try:
        segments = archive.segments()
        listing.window = window_text(reaches(repo, archive))
    except BackupCorruptionError as exc:
        segments = []
        listing.window = f"unknown: {exc.message}"
    listing.wal_segments = len(segments)
    listing.wal_bytes = sum(segment.size for segment in segments)
    ranges = [segment.lsn_range for segment in segments if segment.lsn_range is not None]
    if ranges:
        listing.wal_first_lsn = ranges[0][0]
        listing.wal_last_lsn = max(last for _first, last in ranges)
    return listing
