"""Restoring a backup into a data directory, with point-in-time recovery when asked.

The restore is built in a staging directory beside the target (same filesystem, so the final
rename is atomic): the archive is unpacked there with every checksum checked, archived WAL is
replayed there, everything is fsynced, and only then does the staging directory take the
target's name. A restore cut off at any moment (kill -9, a bad checksum, a full disk) leaves the
target as it was; the staging directory it leaves is cleared by the next restore.

A target that exists and is not empty is only replaced with ``replace=True``, and only when it is
a data dir of the backup's node and backend (never ``/`` or a system directory); the old directory is
then moved to ``<parent>/.quarantine/pre-restore-<ts>-<name>``, never deleted (the swap itself is
one atomic ``renameat2(RENAME_EXCHANGE)`` where the kernel has it). A data dir held by a running
process is refused even then.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import errno
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines import fsio
from engines.backup.checksums import SUMS_NAME, parse_sums
from engines.backup.errors import BackupCorruptionError, RestoreRefusedError
from engines.backup.metadata import BackupMetadata, iso_utc
from engines.backup.mirror import current_access, working_copy
from engines.backup.pitr import RecoveryPlan, plan_recovery, reaches, replay
from engines.backup.progress import ProgressCallback
from engines.backup.repository import BackupEntry, Repository
from engines.backup.signing import pinned_key, signature_problem, trusted_key
from engines.backup.unpack import read_archive
from engines.errors import EngineError, InvalidArgumentError, map_os_error
from engines.fsutil import QUARANTINE_DIR, fsync_dir, utc_stamp
from engines.locking import LOCK_NAME, is_data_dir_locked
from engines.marker import MARKER_NAME, detect_backend, read_marker
from engines.pids import process_alive
from engines.system_paths import system_directory

__all__ = ["RestoreResult", "restore_backup", "archive_checksum"]

PARTIAL_MARK = ".drconsole-restore-partial"
_RENAME_EXCHANGE = 2


@dataclass
class RestoreResult:
    backup_id: str
    type: str  # "full" or "pitr"
    data_dir: Path
    backend: str
    lsn: int
    timestamp_ns: int | None
    replayed_records: int
    quarantine: Path | None
    duration_seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "type": self.type,
            "data_dir": str(self.data_dir),
            "engine": self.backend,
            "lsn": self.lsn,
            "timestamp": None if self.timestamp_ns is None else iso_utc(self.timestamp_ns),
            "replayed_records": self.replayed_records,
            "quarantine": None if self.quarantine is None else str(self.quarantine),
            "duration_seconds": round(self.duration_seconds, 3),
        }


def archive_checksum(entry: BackupEntry) -> tuple[Path, str]:
    """The archive of a full backup and its SHA-256 from the ``SHA256SUMS`` beside it.

    Raises:
        BackupCorruptionError: the archive or its SHA256SUMS is missing or unreadable.
    """
    meta = entry.require_metadata()
    name = meta.archive or f"{entry.backup_id}.tar.zst"
    archive = entry.path / name
    sums_path = entry.path / SUMS_NAME
    try:
        sums = dict(parse_sums(sums_path.read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise BackupCorruptionError(f"{sums_path} is missing", file=str(sums_path)) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise BackupCorruptionError(f"{sums_path} is damaged: {exc}", file=str(sums_path)) from exc
    if name not in sums:
        raise BackupCorruptionError(f"{sums_path} does not list {name}", file=str(sums_path))
    if not archive.is_file():
        raise BackupCorruptionError(f"backup archive {archive} is missing", file=str(archive))
    return archive, sums[name]


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _check_target(target: Path, replace: bool) -> None:
    """Refuse, before anything is changed, what restoring into ``target`` must not do."""
    if target.exists() and not target.is_dir():
        raise InvalidArgumentError(
            f"restore target {target} exists and is not a directory", hint="give a directory path for --data-dir"
        )
    if not target.exists() or _is_empty_dir(target):
        return
    if not replace:
        raise RestoreRefusedError(
            f"data dir {target} exists and is not empty; restoring over it would replace its data",
            hint="restore into a new directory, or pass --replace to move the old one to quarantine first",
        )
    if _is_held(target):
        raise RestoreRefusedError(
            f"data dir {target} is in use by a running process (a node?)",
            hint="stop the process that holds it, then restore",
        )


def _check_replaceable(target: Path, meta: BackupMetadata, also_node: str | None) -> None:
    """Refuse to move aside a non-empty ``target`` that is not a data dir of the backup's node and backend.

    ``--replace`` aimed at the wrong path (a parent directory, another node's data dir, ``/``)
    would move it all to quarantine and put a backup in its place (issue 18). ``also_node``: a
    second node name whose data dir may be replaced (a standby reseeding from its primary's backup).
    """
    if not target.exists() or _is_empty_dir(target):
        return
    try:
        marker = read_marker(target)
    except EngineError as exc:
        raise RestoreRefusedError(
            f"refusing to replace {target}: its drconsole.json is damaged ({exc.message})",
            hint="restore into a new directory and look at the old one first",
        ) from exc
    if marker is None:
        try:
            found = detect_backend(target)  # a data dir that lost its marker still has its engine's files
        except EngineError:
            found = None
        if found == meta.engine or _encrypted_data_dir(target):
            return
        raise RestoreRefusedError(
            f"refusing to replace {target}: it holds no drconsole.json and no {meta.engine} "
            "files, so it is not a data dir of this backup's node (a parent directory? "
            "another program's files?)",
            hint="name the node's data dir itself, or restore into a new directory",
        )
    names = {name for name in (meta.node_name, also_node) if name}
    if marker.backend != meta.engine or (names and marker.node_name and marker.node_name not in names):
        raise RestoreRefusedError(
            f"refusing to replace {target}: it is the {marker.backend} data dir of node {marker.node_name or '?'}, "
            f"and backup {meta.backup_id} is of node {meta.node_name or '?'} ({meta.engine})",
            hint="restore into a new directory; replace only the backup's own node's data dir",
        )


def _encrypted_data_dir(target: Path) -> bool:
    """A data dir whose files ransomware renamed (``drconsole.json.locked``) but whose layout stands.

    Restoring over exactly this is what the ransomware playbook is for, and its marker cannot be
    read. Recognised narrowly: our marker's name with an extension added, beside a ``wal``
    directory; a parent directory or another program's tree has neither at its top.
    """
    marked = any(item.name.startswith(f"{MARKER_NAME}.") and item.is_file() for item in target.iterdir())
    return marked and (target / "wal").is_dir()


def _is_held(data_dir: Path) -> bool:
    """Whether another process holds the engine lock of ``data_dir`` (without creating the lock)."""
    return is_data_dir_locked(data_dir)


def _clear_stale_staging(parent: Path, name: str) -> None:
    """Clear what interrupted restores of ``name`` left in ``parent``.

    A staging directory still marked partial holds only what we unpacked from a backup, so it is
    removed. An unmarked one is an old data dir caught between the swap and its move to
    quarantine: it goes to quarantine, as it was meant to.
    """
    prefix = f".{name}.restore-"
    for item in parent.iterdir():
        if not item.name.startswith(prefix) or not item.name.endswith(".partial") or not item.is_dir():
            continue
        pid = item.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and process_alive(int(pid)):
            continue  # another restore of the same target is running
        if (item / PARTIAL_MARK).exists():
            shutil.rmtree(item, ignore_errors=True)
        else:
            _quarantine(item, parent, name)


def _quarantine(path: Path, parent: Path, name: str) -> Path:
    folder = parent / QUARANTINE_DIR
    folder.mkdir(exist_ok=True)
    destination = folder / f"pre-restore-{utc_stamp()}-{name}"
    fsio.rename(path, destination)
    fsync_dir(folder)
    fsync_dir(parent)
    return destination


def _exchange(first: Path, second: Path) -> bool:
    """Atomically swap two paths (renameat2 RENAME_EXCHANGE); False where the kernel or libc lacks it."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    result = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(first))


def _swap_into_place(staging: Path, target: Path) -> Path | None:
    """Give ``staging`` the target's name; return where the old target went (quarantine), if any."""
    parent, name = target.parent, target.name
    (staging / PARTIAL_MARK).unlink()
    fsync_dir(staging)
    if not target.exists() or _is_empty_dir(target):
        fsio.rename(staging, target)  # rename(2) replaces an empty directory atomically
        fsync_dir(parent)
        return None
    if _exchange(staging, target):
        # No fsync of ``parent`` here: _quarantine's, right after, makes the swap durable with the
        # move. A cut before it leaves the old data dir in place and the restored copy under the
        # staging name without its partial mark, which the next restore moves to quarantine.
        return _quarantine(staging, parent, name)  # staging now holds the old data dir
    moved = _quarantine(target, parent, name)
    fsio.rename(staging, target)
    fsync_dir(parent)
    return moved


def restore_backup(
    repo_path: str | Path,
    data_dir: str | Path,
    *,
    reference: str | None = None,
    until_ns: int | None = None,
    until_lsn: int | None = None,
    replace: bool = False,
    progress: ProgressCallback | None = None,
    tier: str | None = None,
    on_date: dt.date | None = None,
    replace_node: str | None = None,
    to_end: bool = False,
) -> RestoreResult:
    """Restore ``reference`` (default: the newest backup), or recover to a point in time, into ``data_dir``.

    ``to_end`` (with no target given): replay the archived WAL to its end, the newest state the
    repository can recover to (a host lost: everything the archive got before it went).

    ``tier`` / ``on_date`` (instead of ``reference``): the newest full backup of that tier, taken
    on that UTC date (``Repository.pick``), as the reference's ``--from daily|weekly|monthly``.
    ``replace`` moves only a data dir of the backup's node and backend aside (or of ``replace_node``),
    never ``/``, a system directory or a directory that is not a data dir.

    Raises:
        RepositoryError (3), BackupNotFoundError (2), RecoveryTargetError (2), RestoreRefusedError (4),
        BackupCorruptionError (1): before the target is touched.
    """

    to_end = to_end and until_ns is None and until_lsn is None and reference in (None, "latest") and tier is None

    def target_lsn(repo: Repository) -> int | None:  # the segments are pulled before this is asked
        return max((reach.end for reach in reaches(repo)), default=None) if to_end else until_lsn

    def base_of(local: Path) -> set[str]:  # the one full backup the restore reads, for its archive
        repo = Repository.open(local)
        chosen = repo.pick(tier, on_date).backup_id if tier is not None or on_date is not None else reference
        base = plan_recovery(repo, reference=chosen, until_ns=until_ns, until_lsn=target_lsn(repo)).base
        return {f"{base.tier}/{base.backup_id}"}

    with working_copy(repo_path, fetch="wal", archives_for=base_of) as local:  # itself when local and plain
        end = target_lsn(Repository.open(local))
        return _restore(local, data_dir, reference, until_ns, end, replace, progress, tier, on_date, replace_node)


def _restore(
    repo_path: Path,
    data_dir: str | Path,
    reference: str | None,
    until_ns: int | None,
    until_lsn: int | None,
    replace: bool,
    progress: ProgressCallback | None,
    tier: str | None,
    on_date: dt.date | None,
    replace_node: str | None,
) -> RestoreResult:
    clock = time.monotonic()
    target = Path(os.path.abspath(data_dir))
    why = system_directory(target)
    if why is not None:
        raise RestoreRefusedError(
            f"refusing to restore over {target}: {why}", hint="restore into the node's own data dir, or a new directory"
        )
    repo = Repository.open(repo_path)
    root = Path(os.path.abspath(repo.root))
    if target == root or root.is_relative_to(target) or target.is_relative_to(root):
        raise InvalidArgumentError(
            f"restore target {target} and backup repository {root} overlap",
            hint="restore into a directory outside the repository",
        )
    _check_target(target, replace)
    if tier is not None or on_date is not None:
        if reference not in (None, "latest"):
            raise InvalidArgumentError("name a backup ID or a tier/date, not both")
        reference = repo.pick(tier, on_date).backup_id
    plan = plan_recovery(repo, reference=reference, until_ns=until_ns, until_lsn=until_lsn)
    _check_signed(repo, plan.base)
    meta = plan.base.require_metadata()
    newer = meta.format_problem()
    if newer is not None:
        raise BackupCorruptionError(
            f"backup {meta.backup_id} cannot be restored by this drconsole: {newer}",
            hint="nothing was restored; restore it with the drconsole that wrote it, or by hand (README)",
        )
    if replace:
        _check_replaceable(target, meta, replace_node)
    archive, checksum = archive_checksum(plan.base)
    log = repo.log("restore")
    log.info(
        f"restore of {meta.backup_id} into {target} started"
        + (f", recovering to LSN {until_lsn}" if until_lsn is not None else "")
        + (f", recovering to {iso_utc(until_ns)}" if until_ns is not None else "")
    )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _clear_stale_staging(target.parent, target.name)
        staging = target.parent / f".{target.name}.restore-{os.getpid()}-{utc_stamp()}.partial"
        staging.mkdir()
        (staging / PARTIAL_MARK).touch()
    except OSError as exc:
        raise map_os_error(exc, f"preparing to restore into {target}") from exc
    try:
        result = _restore_into(staging, target, plan, repo, archive, checksum, progress, replace)
    except EngineError as exc:
        log.error(f"restore into {target} failed, target untouched: {exc}")
        raise
    except OSError as exc:
        log.error(f"restore into {target} failed, target untouched: {exc}")
        raise map_os_error(exc, f"restoring into {target}") from exc
    finally:
        if staging.exists() and (staging / PARTIAL_MARK).exists():
            shutil.rmtree(staging, ignore_errors=True)  # our own unfinished copy; the target is untouched
    result.duration_seconds = time.monotonic() - clock
    log.info(
        f"restored {meta.backup_id} into {target} at LSN {result.lsn}"
        + (f"; the old data dir is in {result.quarantine}" if result.quarantine else "")
    )
    return result


def _check_signed(repo: Repository, entry: BackupEntry) -> None:
    """A repository whose backups are signed restores only a backup signed by its key.

    Raises:
        BackupCorruptionError: unsigned, signed by another key, or changed since it was signed.
    """
    key_file = current_access().sign_key
    trusted = trusted_key(repo.marker(), pinned_key(key_file) if key_file is not None else None, repo.location)
    if trusted is None:
        return
    problem = signature_problem(entry.path, entry.backup_id, trusted)
    if problem is not None:
        raise BackupCorruptionError(
            f"backup {entry.backup_id} fails its signature check: {problem}",
            hint="nothing was restored; the repository may have been tampered with: "
            "restore from another copy (`backup verify` lists what is sound)",
        )


def _restore_into(
    staging: Path,
    target: Path,
    plan: RecoveryPlan,
    repo: Repository,
    archive: Path,
    checksum: str,
    progress: ProgressCallback | None,
    replace: bool,
) -> RestoreResult:
    meta = plan.base.require_metadata()
    check = read_archive(
        archive,
        extract_to=staging,
        expected_sha256=checksum,
        progress=progress,
        phase="restore",
        member_sums=meta.member_sums,
    )
    if not check.ok:
        where, detail = check.problems[0]
        raise BackupCorruptionError(
            f"backup {meta.backup_id} is damaged: {where}: {detail}",
            file=where,
            hint="nothing was restored; try an older backup (`backup list`)",
        )
    lsn, when, replayed = meta.lsn_end, meta.lsn_end_time_ns if meta.lsn_end else None, 0
    if plan.replays:
        from engines.registry import open_engine  # the engines load only for a replay

        engine = open_engine(staging, mode="rw")
        try:
            outcome = replay(engine, repo.wal_archive, plan, progress)
        finally:
            engine.close()
        lsn, when, replayed = outcome.lsn, outcome.timestamp_ns, outcome.records
    (staging / LOCK_NAME).unlink(missing_ok=True)  # ours, from the replay; the new dir starts clean
    if replace:
        _check_target(target, replace)  # a node may have started on it meanwhile
    quarantine = _swap_into_place(staging, target)
    return RestoreResult(
        meta.backup_id, "pitr" if plan.replays else "full", target, meta.engine, lsn, when, replayed, quarantine, 0.0
    )
