"""The backup repository on disk: its layout, its lock, and finding backups in it.

::

    <repo>/
      drconsole-backup.json      what this directory is, and which node's backups it holds
      daily/ weekly/ monthly/    one directory per backup, in the tier it was created for:
        backup_20261123_020000/
          backup_20261123_020000.tar.zst             the checkpoint: tar, zstd-compressed
          SHA256SUMS                                 `sha256sum -c SHA256SUMS` checks the archive
          backup_20261123_020000.metadata.json       THE_BOT-style metadata
        incr_20261123_030000/                        an incremental backup: metadata, and a
          SHA256SUMS, ...metadata.json               SHA256SUMS naming its segments in ../../wal-archive
      wal-archive/               archived WAL segments (<first-lsn>.wal), manifest.json, SHA256SUMS
      logs/                      one log file per operation
      .tmp/                      backups being written (ours; a crash leaves them, the next run clears them)

A backup appears in its tier only once complete: it is written under ``.tmp/`` and renamed into
place, so a listing never shows half a backup.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from engines import fsio
from engines.backup.errors import BackupCorruptionError, BackupNotFoundError, RepositoryError
from engines.backup.location import shown_location
from engines.backup.metadata import BackupMetadata, iso_utc, metadata_name, now_ns, read_metadata
from engines.errors import InvalidArgumentError, SafetyRefusal, map_os_error
from engines.fsutil import atomic_write_text, fsync_dir
from engines.pids import process_alive

__all__ = [
    "TIERS",
    "WAL_ARCHIVE",
    "LOGS",
    "REPO_MARKER",
    "BackupEntry",
    "Repository",
    "OperationLog",
    "backup_date",
    "parse_backup_date",
]

TIERS = ("daily", "weekly", "monthly")
WAL_ARCHIVE = "wal-archive"
LOGS = "logs"
TMP = ".tmp"
LOCK = ".lock"
REPO_MARKER = "drconsole-backup.json"
REPO_FORMAT = "drconsole-backup-repository"


@dataclass
class BackupEntry:
    """A backup directory found in a tier; ``error`` is set when its metadata does not parse."""

    backup_id: str
    tier: str
    path: Path
    metadata: BackupMetadata | None
    error: BackupCorruptionError | None = None

    @property
    def metadata_path(self) -> Path:
        return self.path / metadata_name(self.backup_id)

    def require_metadata(self) -> BackupMetadata:
        if self.metadata is None:
            assert self.error is not None
            raise self.error
        return self.metadata


class Repository:
    """One backup repository. Use ``Repository.open`` (must exist) or ``Repository.create``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.location = shown_location(self.root)
        """What this repository is to the user and to the data dirs that record it: its path, or
        the ``sftp://`` URL of the store it is a working copy of (engines/backup/mirror.py)."""

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> Repository:
        """An existing repository.

        Raises:
            RepositoryError: the path does not exist or is not a drconsole backup repository.
        """
        repo = cls(Path(root))
        if not repo.root.exists():
            raise RepositoryError(
                f"backup repository {repo.location} does not exist",
                hint="check --repo; `backup create` makes a new one",
            )
        if not repo.root.is_dir():
            raise RepositoryError(f"backup repository {repo.location} is not a directory", hint="check --repo")
        if not repo.is_repository():
            raise RepositoryError(
                f"{repo.location} is not a drconsole backup repository (no {REPO_MARKER}, no daily/ and wal-archive/)",
                hint="check --repo",
            )
        return repo

    @classmethod
    def create(cls, root: str | os.PathLike[str]) -> Repository:
        """The repository at ``root``, laid out first if the path is new or an empty directory."""
        repo = cls(Path(root))
        if repo.root.exists() and not repo.root.is_dir():
            raise RepositoryError(f"backup repository {repo.location} is not a directory", hint="check --repo")
        if repo.root.is_dir() and repo.is_repository():
            repo._ensure_layout()
            return repo
        if repo.root.is_dir() and any(repo.root.iterdir()):
            raise RepositoryError(
                f"{repo.location} is not empty and is not a drconsole backup repository",
                hint="give a new or empty directory for --repo",
            )
        try:
            repo.root.mkdir(parents=True, exist_ok=True)
            repo._ensure_layout()
            atomic_write_text(
                repo.root / REPO_MARKER,
                json.dumps({"format": REPO_FORMAT, "version": 1, "created": iso_utc(now_ns())}, indent=2) + "\n",
            )
            fsync_dir(repo.root.parent)
        except OSError as exc:
            raise map_os_error(exc, f"creating backup repository {repo.location}") from exc
        return repo

    def shown(self, path: Path) -> str:
        """How to name ``path`` (inside the repository) to the user: under the URL for a working copy."""
        if self.location == str(self.root):
            return str(path)
        return f"{self.location.rstrip('/')}/{Path(path).relative_to(self.root).as_posix()}"

    def is_repository(self) -> bool:
        return (self.root / REPO_MARKER).is_file() or (
            (self.root / "daily").is_dir() and (self.root / WAL_ARCHIVE).is_dir()
        )

    def _ensure_layout(self) -> None:
        for name in (*TIERS, WAL_ARCHIVE, LOGS):
            (self.root / name).mkdir(exist_ok=True)

    # ------------------------------------------------------------------ identity
    def marker(self) -> dict[str, object]:
        try:
            value = json.loads((self.root / REPO_MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def claim_source(self, backend: str, node_name: str) -> None:
        """Record (first backup) or check (later ones) which node this repository belongs to.

        One repository holds one node's history: two nodes' WAL in one archive would interleave
        LSNs that mean different writes.

        Raises:
            SafetyRefusal: the repository already holds another node's backups.
        """
        marker = self.marker()
        known_backend, known_node = marker.get("engine"), marker.get("node_name")
        if known_backend is None:
            marker.update({"format": REPO_FORMAT, "version": 1, "engine": backend, "node_name": node_name})
            marker.setdefault("created", iso_utc(now_ns()))
            atomic_write_text(self.root / REPO_MARKER, json.dumps(marker, indent=2) + "\n")
            return
        if known_backend != backend or known_node != node_name:
            raise SafetyRefusal(
                f"repository {self.location} holds backups of node {known_node!r} ({known_backend}); "
                f"this data dir is node {node_name!r} ({backend})",
                hint="use one backup repository per node",
            )

    # ------------------------------------------------------------------ paths
    def tier_dir(self, tier: str) -> Path:
        return self.root / tier

    @property
    def wal_archive(self) -> Path:
        return self.root / WAL_ARCHIVE

    @property
    def logs(self) -> Path:
        return self.root / LOGS

    @property
    def tmp(self) -> Path:
        return self.root / TMP

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive use of the repository's shared state (IDs, the archive manifest, pruning)."""
        try:
            fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise map_os_error(exc, f"locking backup repository {self.location}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ backups
    def backups(self) -> list[BackupEntry]:
        """Every backup in every tier, oldest first; unreadable metadata is kept with its error."""
        entries = []
        for tier in TIERS:
            folder = self.tier_dir(tier)
            if not folder.is_dir():
                continue
            for item in folder.iterdir():
                if not item.is_dir() or item.name.startswith("."):
                    continue
                path = item / metadata_name(item.name)
                try:
                    entries.append(BackupEntry(item.name, tier, item, read_metadata(path)))
                except BackupCorruptionError as exc:
                    entries.append(BackupEntry(item.name, tier, item, None, exc))
        entries.sort(key=lambda entry: (entry.metadata.timestamp_ns if entry.metadata else 0, entry.backup_id))
        return entries

    def find(self, reference: str | None) -> BackupEntry:
        """The backup named ``reference``; ``None`` or ``"latest"``: the newest readable one.

        Raises:
            BackupNotFoundError: no such backup (the message lists what there is).
        """
        entries = self.backups()
        if reference in (None, "latest"):
            readable = [entry for entry in entries if entry.metadata is not None]
            if not readable:
                damaged = [entry.error for entry in entries if entry.error is not None]
                if damaged:
                    raise damaged[-1]  # names the damaged metadata file (exit 1), not "no backup"
                raise BackupNotFoundError(
                    f"repository {self.location} holds no backup", hint="create one with `drconsole backup create`"
                )
            return readable[-1]
        for entry in entries:
            if entry.backup_id == reference:
                return entry
        known = ", ".join(entry.backup_id for entry in entries[-5:]) or "none"
        raise BackupNotFoundError(
            f"no backup {reference!r} in {self.location}",
            hint=f"`drconsole backup list --repo {self.location}` shows them; newest: {known}",
        )

    def pick(self, tier: str | None = None, on_date: dt.date | None = None) -> BackupEntry:
        """The newest full backup of ``tier`` (any tier when None), taken on ``on_date`` (UTC) if given.

        The reference scripts' ``--from daily|weekly|monthly`` and ``--from YYYYMMDD``.

        Raises:
            BackupNotFoundError: none matches (the message lists the dates that tier has).
        """
        if tier is not None and tier not in TIERS:
            raise BackupNotFoundError(f"no tier {tier!r}; the tiers are {', '.join(TIERS)}")
        fulls = [
            entry
            for entry in self.backups()
            if entry.metadata is not None and entry.metadata.type == "full" and tier in (None, entry.tier)
        ]
        chosen = [entry for entry in fulls if on_date is None or backup_date(entry) == on_date]
        if chosen:
            return chosen[-1]
        what = f"{tier} backup" if tier else "full backup"
        when = f" taken on {on_date.isoformat()} (UTC)" if on_date else ""
        dates = sorted({backup_date(entry).isoformat() for entry in fulls})
        known = f"{what}s on: {', '.join(dates[-7:])}" if dates else f"there is no {what} at all"
        raise BackupNotFoundError(f"no {what}{when} in {self.location}", hint=known)

    def full_backups(self) -> list[BackupMetadata]:
        return [e.metadata for e in self.backups() if e.metadata is not None and e.metadata.type == "full"]

    def new_backup_id(self, prefix: str, started_ns: int) -> str:
        """``<prefix>_YYYYMMDD_HHMMSS`` (UTC), with ``_2``, ``_3``... when that second is taken.

        Call with the lock held.
        """
        stamp = time.strftime("%Y%m%d_%H%M%S", time.gmtime(started_ns / 1e9))
        base = f"{prefix}_{stamp}"
        taken = {entry.backup_id for entry in self.backups()}
        if self.tmp.is_dir():
            taken |= {item.name.split(".", 1)[0] for item in self.tmp.iterdir()}
        candidate, number = base, 1
        while candidate in taken:
            number += 1
            candidate = f"{base}_{number}"
        return candidate

    def scratch(self, backup_id: str, kind: str) -> Path:
        """``.tmp/<id>.<pid>.<kind>``: a path of ours for work in progress (``kind``: partial, checkpoint...).

        The pid tells a later run whether the process that made it is gone (``clear_stale``).
        """
        self.tmp.mkdir(exist_ok=True)
        return self.tmp / f"{backup_id}.{os.getpid()}.{kind}"

    def staging(self, backup_id: str) -> Path:
        """A fresh directory under ``.tmp/`` to write a backup in (call with the lock held)."""
        path = self.scratch(backup_id, "partial")
        path.mkdir()
        return path

    def clear_stale(self) -> list[str]:
        """Remove what interrupted runs left under ``.tmp/`` (call with the lock held).

        Only our own work in progress lives there (partial backups, temporary checkpoints, backups
        being pruned): nothing in ``.tmp/`` is ever a complete backup. Entries of a process that is
        still running are left alone.
        """
        removed: list[str] = []
        if not self.tmp.is_dir():
            return removed
        for item in self.tmp.iterdir():
            parts = item.name.lstrip(".").split(".")
            pid = next((int(part) for part in parts[1:] if part.isdigit()), None)
            if pid is not None and process_alive(pid):
                continue
            if item.is_dir():
                shutil.rmtree(item, ignore_errors=True)
            else:
                item.unlink(missing_ok=True)
            removed.append(item.name)
        return removed

    def publish(self, staging: Path, tier: str, backup_id: str) -> Path:
        """Rename a complete backup from ``.tmp/`` into its tier; return its final path."""
        target = self.tier_dir(tier) / backup_id
        try:
            fsync_dir(staging)
            fsio.rename(staging, target)
            fsync_dir(self.tier_dir(tier))
            fsync_dir(self.tmp)
        except OSError as exc:
            raise map_os_error(exc, f"publishing backup {backup_id}") from exc
        return target

    def log(self, operation: str) -> OperationLog:
        return OperationLog(self.logs, operation)


class OperationLog:
    """``logs/<operation>_<UTC stamp>.log``: one line per step, for the postmortem.

    Best effort by design: a repository mounted read-only (verifying an offsite copy) must not
    fail an operation because it cannot be logged to.
    """

    def __init__(self, folder: Path, operation: str) -> None:
        stamp = time.strftime("%Y%m%d_%H%M%S", time.gmtime())
        self.path: Path | None = folder / f"{operation}_{stamp}.log"
        self._operation = operation

    def write(self, level: str, message: str) -> None:
        if self.path is None:
            return
        line = f"{iso_utc(now_ns())} {level} {self._operation}: {' '.join(message.split())}\n"
        try:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line)
        except OSError:
            self.path = None

    def info(self, message: str) -> None:
        self.write("INFO", message)

    def error(self, message: str) -> None:
        self.write("ERROR", message)


def backup_date(entry: BackupEntry) -> dt.date:
    """The UTC date a backup was taken (its metadata time; the ID's stamp when unreadable)."""
    if entry.metadata is not None:
        return dt.datetime.fromtimestamp(entry.metadata.timestamp_ns / 1e9, dt.UTC).date()
    stamp = entry.backup_id.split("_")[1] if "_" in entry.backup_id else ""
    return dt.datetime.strptime(stamp, "%Y%m%d").date() if len(stamp) == 8 and stamp.isdigit() else dt.date.min


def parse_backup_date(text: str) -> dt.date:
    """``2026-11-23`` or ``20261123`` (the reference's spelling) as a date.

    Raises:
        InvalidArgumentError: anything else.
    """
    for pattern in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return dt.datetime.strptime(text.strip(), pattern).date()
        except ValueError:
            continue
    raise InvalidArgumentError(f"{text!r} is not a date", hint="write it as YYYY-MM-DD (UTC), e.g. 2026-11-23")
