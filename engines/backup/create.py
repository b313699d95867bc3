"""Taking backups: a hot full backup of a data dir, and an incremental one (its sealed WAL).

A full backup is ``engine.checkpoint()`` (consistent while writes go on) into the repository's
``.tmp/``, packed as ``<id>.tar.zst`` with a ``SHA256SUMS`` and the metadata beside it, then
renamed into its tier. The checkpoint goes to the repository's disk, not the data dir's: a backup
taken during a disk-full incident must not take space from the engine it is saving.

``backup create`` opens the data dir itself, read-write, because a consistent checkpoint and
sealing the open WAL segment need the engine; a data dir held by a running node is refused with
exit 3 (``SourceLockedError``) until the node API offers ``/admin/checkpoint``. Applications that
embed an engine pass it in (``engine=``), and writes go on during the backup.

Every backup records the repository in the data dir (``drconsole.json``): from then on no process
that opens the data dir recycles a WAL segment before it is in the repository's archive
(``engines/archiving.py``). WAL also reaches the archive here: every ``backup create`` archives
the sealed segments not archived yet (on a repository's first full backup, none: its checkpoint
covers them, and the recoverable window starts there), and ``--incremental`` seals the open
segment first. Each run records what it observed ("at time t the log ended at LSN n") beside the
archive: that bounds the recoverable window when no later write does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engines.backup.archive import ArchivedSegment, WalArchive
from engines.backup.checksums import SUMS_NAME, format_sums, prefixed
from engines.backup.copies import copies_of, sync_copies, with_copies
from engines.backup.errors import SourceLockedError
from engines.backup.location import location_text
from engines.backup.metadata import BackupMetadata, Tier, iso_utc, metadata_name, now_ns, size_readable, write_metadata
from engines.backup.mirror import archive_upload, current_access, working_copy
from engines.backup.pack import pack_members
from engines.backup.progress import ProgressCallback
from engines.backup.repository import REPO_MARKER, OperationLog, Repository
from engines.backup.signing import load_signing_key, sign_backup, trust_key, trusted_key
from engines.backup.sources import ColdSource, LiveSource, hold_data_dir
from engines.errors import EngineError, LockedError, NotFoundError, SafetyRefusal
from engines.fsutil import atomic_write_text
from engines.wal import SegmentInfo, archive_status

if TYPE_CHECKING:
    from engines.base import Engine

__all__ = ["BackupResult", "RETENTION_LABELS", "create_backup", "choose_tier"]

RETENTION_LABELS = {"daily": "7_days", "weekly": "4_weeks", "monthly": "12_months"}
INCREMENTAL_RETENTION = "wal_window"


@dataclass
class BackupResult:
    """What ``backup create`` made. ``backup_id`` is None when an incremental found nothing new."""

    backup_id: str | None
    type: str
    path: Path | str
    """Where the backup is: a path, or a URL for a repository on another host."""
    size_bytes: int
    checksum: str | None
    lsn_start: int
    lsn_end: int
    duration_seconds: float
    engine: str
    tier: str | None
    archived_segments: int
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds by phase: open, checkpoint, pack, archive-wal, publish, record, close."""
    method: str = ""
    """``in-place`` (a data dir no process held, packed under its lock) or ``checkpoint``."""
    copies: list[dict[str, Any]] = field(default_factory=list)
    """One ``{repo, files_copied, ok, error}`` per copy of the repository (engines/backup/copies.py)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "type": self.type,
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "checksum": self.checksum,
            "lsn_start": self.lsn_start,
            "lsn_end": self.lsn_end,
            "duration_seconds": round(self.duration_seconds, 3),
            "engine": self.engine,
            "tier": self.tier,
            "archived_segments": self.archived_segments,
            "phases": self.phases,
            "method": self.method,
            "copies": self.copies,
        }


def choose_tier(repo: Repository, started_ns: int) -> Tier:
    """The tier of a new full backup (grandfather-father-son, as the reference rotates them).

    The first full backup of a calendar month (UTC) is a monthly one, the first of an ISO week a
    weekly one, any other a daily one.
    """
    moment = dt.datetime.fromtimestamp(started_ns / 1e9, dt.UTC)
    month, week = (moment.year, moment.month), moment.isocalendar()[:2]
    monthly_seen = weekly_seen = False
    for entry in repo.backups():
        meta = entry.metadata
        if meta is None or meta.type != "full" or entry.tier == "daily":
            continue
        when = dt.datetime.fromtimestamp(meta.timestamp_ns / 1e9, dt.UTC)
        if entry.tier == "monthly" and (when.year, when.month) == month:
            monthly_seen = True
        if when.isocalendar()[:2] == week:
            weekly_seen = True
    if not monthly_seen:
        return "monthly"
    return "daily" if weekly_seen else "weekly"


@contextmanager
def _source_for(data_dir: Path | None, engine: Engine | None) -> Iterator[LiveSource | ColdSource]:
    """What to back up: the given engine (hot), the data dir in place (cold), or, when it needs its
    engine first (a torn WAL tail), the data dir opened read-write (hot)."""
    if engine is not None:
        yield LiveSource(engine)
        return
    if data_dir is None:
        raise NotFoundError("no data dir given to back up")
    try:
        fd, cold = hold_data_dir(data_dir)
    except LockedError as exc:
        raise _locked(data_dir) from exc
    if cold is not None:
        try:
            yield cold
        finally:
            os.close(fd)
        return
    os.close(fd)
    from engines.registry import open_engine  # the engines load only when the dir needs opening

    try:
        opened = open_engine(data_dir, mode="rw")
    except LockedError as exc:
        raise _locked(data_dir) from exc
    try:
        yield LiveSource(opened)
    finally:
        opened.close()


def _locked(data_dir: Path) -> SourceLockedError:
    return SourceLockedError(
        f"data dir {data_dir} is in use by another process (a running node?); `backup create` "
        f"needs it to itself to take a consistent copy",
        hint="stop the node and retry; the node's /admin/checkpoint will take backups of live nodes",
    )


def create_backup(
    repo_path: str | Path,
    *,
    data_dir: str | Path | None = None,
    engine: Engine | None = None,
    incremental: bool = False,
    progress: ProgressCallback | None = None,
    clock_ns: int | None = None,
) -> BackupResult:
    """Take a full (default) or incremental backup of ``data_dir`` (or of the open ``engine``).

    The data dir is checked first: one that cannot be backed up leaves no repository behind.

    Args:
        clock_ns: the backup's start time instead of the clock (tests of retention tiers).
    """
    key_file = current_access().sign_key
    if key_file is not None:
        load_signing_key(key_file)  # a bad key: exit 2 before anything is done
    with working_copy(repo_path, create=True) as local:  # the repository itself when local and plain
        result = _create(local, data_dir, engine, incremental, progress, clock_ns)
        working = Repository(local)
        if working.location != str(working.root):  # a working copy: say where the backup really is
            result.path = working.shown(Path(result.path))
        copies = copies_of(working.marker(), working.location)
    if copies:
        result.copies = [outcome.to_json() for outcome in sync_copies(working.location, copies)]
    return result


def _create(
    repo_path: Path,
    data_dir: str | Path | None,
    engine: Engine | None,
    incremental: bool,
    progress: ProgressCallback | None,
    clock_ns: int | None,
) -> BackupResult:
    clock = _Phases()
    source_path = Path(data_dir) if data_dir is not None else None
    with _source_for(source_path, engine) as source:
        clock.mark("open")
        repo = Repository.create(Path(repo_path))
        archive = WalArchive(repo)
        log = repo.log("backup")
        try:
            with repo.lock():
                repo.claim_source(source.backend, source.node_name)
                marker = repo.marker()
                if with_copies(marker, current_access().copies):
                    atomic_write_text(repo.root / REPO_MARKER, json.dumps(marker, indent=2) + "\n")
            if incremental:
                result, done = _incremental(repo, archive, source, log, clock_ns, clock)
            else:
                result, done = _full(repo, archive, source, log, progress, clock_ns, clock)
            # From now on every process that opens the data dir archives into this repository
            # before it recycles a segment; closing an engine we opened archives the rest.
            source.record(repo.location, done)
            clock.mark("record")
        except EngineError as exc:
            log.error(str(exc))
            raise
    clock.mark("close")
    result.phases = clock.phases
    result.method = "in-place" if isinstance(source, ColdSource) else "checkpoint"
    if result.backup_id is not None:
        log.info(
            f"{result.type} backup {result.backup_id} done: LSN {result.lsn_start}..{result.lsn_end}, "
            f"{result.size_bytes} bytes in {result.duration_seconds:.2f} s ({clock.text()}, "
            f"{result.method})"
        )
    return result


def _sign(repo: Repository, staging: Path, backup_id: str) -> None:
    """Sign the staged backup (``--sign-key``); the first signed backup makes the repository trust the key.

    Raises:
        SafetyRefusal: the repository trusts another key, or its backups are signed and no key was given.
    """
    key_file = current_access().sign_key
    marker = repo.marker()
    if key_file is None:
        if trusted_key(marker) is not None:
            raise SafetyRefusal(
                f"{repo.location}'s backups are signed; an unsigned one would fail every verify",
                hint="give the repository's signing key with --sign-key FILE",
            )
        return
    key = load_signing_key(key_file)
    if trust_key(marker, key, repo.location):
        atomic_write_text(repo.root / REPO_MARKER, json.dumps(marker, indent=2) + "\n")
    sign_backup(staging, backup_id, key)


class _Phases:
    """Where a backup's time goes: seconds since the previous mark, by phase."""

    def __init__(self) -> None:
        self._last = time.monotonic()
        self.phases: dict[str, float] = {}

    def mark(self, phase: str) -> None:
        now = time.monotonic()
        self.phases[phase] = round(self.phases.get(phase, 0.0) + now - self._last, 4)
        self._last = now

    def text(self) -> str:
        return ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in self.phases.items())


def _archive_paths(
    archive: WalArchive, source: LiveSource | ColdSource, segments: list[SegmentInfo]
) -> list[ArchivedSegment]:
    """Archive ``segments`` (those already ``.done`` into this repository are skipped unread)."""
    recorded = source.marker.archive
    same = recorded is not None and location_text(recorded.repo) == location_text(archive.repo.location)
    done = archive_status.statuses(source.wal_dir) if same else {}
    added = []
    for segment in segments:
        if done.get(segment.path.name) == archive_status.DONE:
            continue
        try:
            archived = archive.archive_segment(segment.path)
        except NotFoundError:
            if segment.path.exists():
                raise
            continue  # recycled meanwhile: only after it was archived (engines/archiving.py)
        if archived is not None:
            added.append(archived)
    return added


def _full(
    repo: Repository,
    archive: WalArchive,
    source: LiveSource | ColdSource,
    log: OperationLog,
    progress: ProgressCallback | None,
    clock_ns: int | None,
    clock: _Phases,
) -> tuple[BackupResult, list[str]]:
    started = clock_ns if clock_ns is not None else now_ns()
    began = time.monotonic()
    with repo.lock():
        repo.clear_stale()
        backup_id = repo.new_backup_id("backup", started)
        staging = repo.staging(backup_id)
    scratch = repo.scratch(backup_id, "checkpoint")
    log.info(f"full backup {backup_id} of {source.path} ({source.backend}) started")
    first = not repo.full_backups()
    try:
        sealed, _last = source.sealed(seal=False)
        view = source.snapshot(scratch)
        clock.mark("checkpoint")
        archive_name = f"{backup_id}.tar.zst"
        # The sealed WAL not archived yet goes into the archive beside the packing: copying,
        # hashing and fsyncing segments waits on the disk while zstd's threads wait on the CPU.
        # On a repository's first full backup every segment sealed before the snapshot is
        # covered by it, and no earlier base backup could replay them: nothing to archive.
        archiving = _Background(lambda: [] if first else _archive_paths(archive, source, sealed))
        try:
            # To an sftp:// repository the archive goes up while it is packed (sftp_stream.py).
            upload = archive_upload(repo.root, backup_id, archive_name)
            # In a working copy (remote or encrypted repository) the archive is not the one kept:
            # the store fsyncs what it keeps (put_directory), so an fsync here is time for nothing.
            packed = pack_members(
                view.members,
                staging / archive_name,
                progress=progress,
                copy=upload,
                durable=repo.location == str(repo.root),
            )
        except BaseException:
            archiving.join()  # the packing error is the one to report; the thread must end first
            raise
        clock.mark("pack")
        added = archiving.result()
        clock.mark("archive-wal")
        lsn_end_time = view.lsn_end_time_ns or _archived_time(archive, view.lsn) or now_ns()
        atomic_write_text(staging / SUMS_NAME, format_sums([(archive_name, packed.archive_sha256)]))
        with repo.lock():
            tier = choose_tier(repo, started)
            metadata = BackupMetadata(
                backup_id=backup_id,
                type="full",
                engine=source.backend,
                timestamp=iso_utc(started),
                size_bytes=packed.archive_bytes,
                size_readable=size_readable(packed.archive_bytes),
                duration_seconds=round(time.monotonic() - began, 3),
                files=[archive_name, SUMS_NAME],
                checksum=prefixed(packed.archive_sha256),
                lsn_start=view.lsn_start,
                lsn_end=view.lsn,
                retention=RETENTION_LABELS[tier],
                tier=tier,
                timestamp_ns=started,
                lsn_end_time_ns=lsn_end_time,
                node_name=source.node_name,
                source=str(source.path),
                source_bytes=packed.source_bytes,
                file_count=packed.file_count,
                compression="zstd-3",
                archive=archive_name,
            )
            write_metadata(staging / metadata_name(backup_id), metadata)
            _sign(repo, staging, backup_id)
            final = repo.publish(staging, tier, backup_id)
            archive.observe(started, view.lsn)
        clock.mark("publish")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # our temporary checkpoint copy, when there was one
        shutil.rmtree(staging, ignore_errors=True)  # gone after publishing; our partial backup otherwise
    return (
        BackupResult(
            backup_id,
            "full",
            final,
            metadata.size_bytes,
            metadata.checksum,
            view.lsn_start,
            view.lsn,
            metadata.duration_seconds,
            source.backend,
            tier,
            len(added),
        ),
        [segment.path.name for segment in sealed],
    )


class _Background:
    """A function run on a thread; ``result()`` joins it and returns its value or raises its error."""

    def __init__(self, function: Callable[[], list[ArchivedSegment]]) -> None:
        self._value: list[ArchivedSegment] = []
        self._error: BaseException | None = None
        self._function = function
        self._thread = threading.Thread(target=self._run, name="drconsole-backup-archive", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._function()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread by result()
            self._error = exc

    def join(self) -> None:
        self._thread.join()

    def result(self) -> list[ArchivedSegment]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _archived_time(archive: WalArchive, lsn: int) -> int | None:
    """The time of record ``lsn`` from the archive's manifest, when a segment ends there."""
    if lsn == 0:
        return None
    for segment in archive.segments():
        if segment.last_lsn == lsn and segment.last_time_ns is not None:
            return segment.last_time_ns
    return None


def _incremental(
    repo: Repository,
    archive: WalArchive,
    source: LiveSource | ColdSource,
    log: OperationLog,
    clock_ns: int | None,
    phases: _Phases,
) -> tuple[BackupResult, list[str]]:
    started = clock_ns if clock_ns is not None else now_ns()
    clock = time.monotonic()
    sealed, last_lsn = source.sealed(seal=True)
    added = _archive_paths(archive, source, sealed)
    phases.mark("archive-wal")
    done = [segment.path.name for segment in sealed]
    with repo.lock():
        archive.observe(started, last_lsn)
    # The increment is the WAL archived since the newest backup, whoever archived it: every
    # process that opened the data dir since has archived its segments already.
    since = max((entry.metadata.lsn_end for entry in repo.backups() if entry.metadata is not None), default=0)
    new = [
        segment
        for segment in archive.segments()
        if segment.last_lsn is not None and since < segment.last_lsn <= last_lsn
    ]
    if not new:
        log.info(f"incremental backup of {source.path}: nothing new to archive (LSN {last_lsn})")
        return BackupResult(
            None,
            "incremental",
            archive.path,
            0,
            None,
            last_lsn,
            last_lsn,
            time.monotonic() - clock,
            source.backend,
            None,
            0,
        ), done
    first = min(segment.first_lsn for segment in new)
    last = max(segment.last_lsn or segment.first_lsn for segment in new)
    names = [f"../../{archive.path.name}/{segment.name}" for segment in new]
    sums = format_sums([(name, segment.sha256) for name, segment in zip(names, new)])
    with repo.lock():
        repo.clear_stale()
        backup_id = repo.new_backup_id("incr", started)
        staging = repo.staging(backup_id)
        try:
            atomic_write_text(staging / SUMS_NAME, sums)
            fulls = [m for m in repo.full_backups() if m.lsn_end < first]
            size = sum(segment.size for segment in new)
            metadata = BackupMetadata(
                backup_id=backup_id,
                type="incremental",
                engine=source.backend,
                timestamp=iso_utc(started),
                size_bytes=size,
                size_readable=size_readable(size),
                duration_seconds=round(time.monotonic() - clock, 3),
                files=[SUMS_NAME, *names],
                checksum=prefixed(hashlib.sha256(sums.encode("utf-8")).hexdigest()),
                lsn_start=first,
                lsn_end=last,
                retention=INCREMENTAL_RETENTION,
                tier="daily",
                timestamp_ns=started,
                lsn_end_time_ns=max(s.last_time_ns or 0 for s in new) or started,
                node_name=source.node_name,
                source=str(source.path),
                source_bytes=size,
                file_count=len(new),
                compression="none",
                base_backup_id=fulls[-1].backup_id if fulls else None,
                segments=[s.name for s in new],
            )
            write_metadata(staging / metadata_name(backup_id), metadata)
            _sign(repo, staging, backup_id)
            final = repo.publish(staging, "daily", backup_id)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone after publishing; our partial record otherwise
    return (
        BackupResult(
            backup_id,
            "incremental",
            final,
            size,
            metadata.checksum,
            first,
            last,
            metadata.duration_seconds,
            source.backend,
            "daily",
            len(added),
        ),
        done,
    )
