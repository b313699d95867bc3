"""Working on a repository held by a store: pull what the operation needs, run it, push the change.

The backup code (create, list, verify, restore, prune, WAL archiving) works on a repository
directory. For a repository on another host (``sftp://...``), ``working_copy`` makes a private
local copy of the files the operation needs (always the small ones: the marker, every backup's
metadata and ``SHA256SUMS``, the WAL archive's manifest; the segments and archives only when
asked), runs the operation on it, and then pushes what changed through the store:

1. backups the operation removed (prune) leave the store first, each directory at once;
2. new files in existing directories (archived WAL segments, logs) are uploaded;
3. files the operation rewrote (the archive manifest, the marker, a ``verified`` flag) replace
   theirs atomically, once the segments they list are there;
4. new backup directories go up whole and appear with one rename, last, so a reader of the
   store never sees a backup whose archive or WAL is not there yet;
5. files the operation removed (pruned WAL segments) are removed, after the manifest stopped
   listing them.

``verify`` pulls everything into a fresh copy: what it checks is the bytes read back from the
store. What a session did not pull is still known by its listing (``stored_file``,
``stored_names``): ``backup list`` and ``verify --quick`` check that the archives and segments are
there, with their sizes, without reading them. The copy lives under ``$TMPDIR`` and is removed
afterwards; the process holds the store for one operation at a time, and one repository has one
writer (its node), as for a local one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from engines.backup.errors import ArchiveConflictError, RepositoryError
from engines.backup.location import SftpLocation, forget_working_copy, parse_location, register_working_copy
from engines.backup.store import UPLOAD_DIR, LocalStore, RepositoryStore, StoredFile, backup_dir, bulk_kind
from engines.backup.versioned_store import VersionedStore, has_versions
from engines.fsutil import atomic_write_text

__all__ = [
    "Access",
    "access",
    "archive_upload",
    "current_access",
    "open_store",
    "working_copy",
    "push_changes",
    "stored_file",
    "stored_names",
    "Fetch",
]

Fetch = Literal["metadata", "wal", "all"]
_SKIPPED_PREFIXES = (".tmp/", ".lock")
MARKER = "drconsole-backup.json"


@dataclass(frozen=True)
class Access:
    """How to reach and read repositories in this context (the CLI sets it from its options)."""

    ssh_key: Path | None = None
    copies: tuple[str, ...] = ()
    """Repositories to record as copies of the one written (engines/backup/copies.py)."""
    encrypt_key: Path | None = None
    """A 32-byte key file: archives and archived WAL are stored encrypted (engines/backup/cipher.py)."""
    sign_key: Path | None = None
    """An ed25519 key: new backups are signed (engines/backup/signing.py); verify/restore: the key
    (private or public) the repository's recorded one must be."""


_PROCESS_ACCESS = [Access()]
_ACCESS: ContextVar[Access | None] = ContextVar("drconsole_backup_access", default=None)


def current_access() -> Access:
    return _ACCESS.get() or _PROCESS_ACCESS[0]


def set_process_access(settings: Access) -> None:
    """The access settings of every thread of this process (a node: its archiver and its admin API)."""
    _PROCESS_ACCESS[0] = settings


@contextmanager
def access(**changes: object) -> Iterator[Access]:
    """Use these access settings (``ssh_key=...``) for the repositories opened inside the block."""
    token = _ACCESS.set(replace(current_access(), **changes))  # type: ignore[arg-type]
    try:
        yield current_access()
    finally:
        _ACCESS.reset(token)


def _plain_store(location: Path | SftpLocation) -> RepositoryStore:
    if isinstance(location, SftpLocation):
        from engines.backup.sftp_store import SftpStore  # asyncssh loads only for remote repositories

        return SftpStore(location, key_file=current_access().ssh_key)
    return LocalStore(location)


def open_store(location: Path | SftpLocation) -> RepositoryStore:
    """The store at ``location``, its archives and WAL encrypted with the context's key (if any)."""
    from engines.backup.cipher import EncryptionKey
    from engines.backup.cipher_store import CipherStore

    key_file = current_access().encrypt_key
    key = EncryptionKey.from_file(key_file) if key_file is not None else None
    inner = _plain_store(location)
    return VersionedStore(CipherStore(inner, key, _scratch_of(inner)))


def _scratch_of(store: RepositoryStore) -> Path | None:
    """Where a working copy of ``store`` goes: the repository's own disk when local, else ``$TMPDIR``."""
    return store.scratch() if isinstance(store, LocalStore) else None


def raw_store(location: Path | SftpLocation) -> RepositoryStore:
    """The store at ``location`` with its files as stored (encrypted ones stay so), versions collapsed."""
    return VersionedStore(_plain_store(location))


def _cipher(store: RepositoryStore) -> Any:
    """The ``CipherStore`` layer of ``store`` (stores wrap one another through ``inner``)."""
    from engines.backup.cipher_store import CipherStore

    layer: Any = store
    while layer is not None and not isinstance(layer, CipherStore):
        layer = getattr(layer, "inner", None)
    return layer


def _encryption(marker: Path) -> dict[str, str] | None:
    try:
        value = json.loads(marker.read_text(encoding="utf-8")).get("encryption")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, dict) else None


def _check_key(store: RepositoryStore, local: Path, *, needs_key: bool) -> None:
    """Refuse a key that is not the repository's, or no key where encrypted files are needed."""
    from engines.backup.cipher_store import EncryptionKeyError

    recorded = _encryption(local / MARKER)
    cipher = _cipher(store)
    key = cipher.key if cipher is not None else None
    if recorded is None:
        return
    if key is not None and recorded.get("key_id") != key.key_id:
        raise EncryptionKeyError(
            f"{store.description} is encrypted with key {recorded.get('key_id')}; --encrypt-key is key {key.key_id}",
            hint="give the repository's key file",
        )
    if key is None and needs_key:
        raise EncryptionKeyError(
            f"{store.description} is encrypted (key {recorded.get('key_id')})",
            hint="give its key with --encrypt-key FILE",
        )


def _record_encryption(store: RepositoryStore, local: Path) -> None:
    """The first encrypted backup records the key's id in the marker (never the key)."""
    from engines.backup.cipher import CHUNK_BYTES

    marker = local / MARKER
    cipher = _cipher(store)
    if cipher is None or cipher.key is None or not marker.exists() or _encryption(marker):
        return
    body = json.loads(marker.read_text(encoding="utf-8"))
    body["encryption"] = {"cipher": "aes-256-gcm", "chunk_bytes": str(CHUNK_BYTES), "key_id": cipher.key.key_id}
    atomic_write_text(marker, json.dumps(body, indent=2) + "\n")


@dataclass
class _Pulled:
    remote: dict[str, StoredFile]
    snapshot: dict[str, tuple[int, int]]


@contextmanager
def working_copy(
    repo: str | os.PathLike[str] | SftpLocation,
    *,
    fetch: Fetch = "metadata",
    archives_for: Callable[[Path], set[str]] | None = None,
    write: bool = True,
    create: bool = False,
) -> Iterator[Path]:
    """The repository as a local directory: itself when local, else a copy pushed back afterwards.

    Args:
        fetch: besides the metadata: ``wal`` the archived segments too, ``all`` every file.
        archives_for: given the copy, the backup directories (``daily/<id>``) whose archives to pull.
        write: push what the operation changed (False: a read-only look).
        create: a store without a repository yet is fine (``backup create`` lays one out).

    Raises:
        RepositoryError: the store is unreachable, or holds no repository and ``create`` is False.
    """
    location = parse_location(repo)
    if not isinstance(location, SftpLocation) and current_access().encrypt_key is None:
        if _encryption(location / MARKER) is None and not has_versions(location):
            yield location  # a plain local repository: the backup code works on it directly
            return
    shown = location.url if isinstance(location, SftpLocation) else str(location)
    active = _active()
    if shown in active:
        # Nested in a session of this thread (closing the engine a backup opened archives its WAL):
        # the same copy, which the outer session pushes once; a second copy pushed later would undo
        # the first one's manifest.
        yield active[shown]
        return
    with _held(location, shown):
        store = open_store(location)
        local = Path(tempfile.mkdtemp(prefix="drconsole-repo-", dir=_scratch_of(_cipher(store).inner)))
        register_working_copy(local, shown)
        active[shown] = local
        _stores()[local] = store
        try:
            yield from _session(store, local, shown, fetch, archives_for, write, create)
        finally:
            _stores().pop(local, None)
            active.pop(shown, None)
            with _LISTINGS_LOCK:
                _LISTINGS.pop(str(local.resolve()), None)
            forget_working_copy(local)
            store.close()
            shutil.rmtree(local, ignore_errors=True)  # our private copy; the repository is the store


_LISTINGS: dict[str, dict[str, StoredFile]] = {}  # a working copy's root -> its store's files, as listed
_LISTINGS_LOCK = threading.Lock()


def _listing_of(path: Path) -> tuple[dict[str, StoredFile], str] | None:
    """The listing of the working copy ``path`` is in, and ``path`` relative to its root."""
    where = path.resolve()
    with _LISTINGS_LOCK:
        for root, listing in _LISTINGS.items():
            if where.is_relative_to(root):
                return listing, where.relative_to(root).as_posix()
    return None


def stored_file(path: Path) -> StoredFile | None:
    """How the store of the working copy holding ``path`` lists it (None: not listed, or not in one).

    A file the session did not pull (an archive, a segment) is absent from the copy yet present in
    the store: its size as stored, ``sealed`` when encrypted (``cipher.plain_size``).
    """
    found = _listing_of(path)
    return found[0].get(found[1]) if found is not None else None


def stored_names(folder: Path) -> set[str]:
    """Names of the files the store lists directly in a working copy's ``folder`` (none outside one)."""
    found = _listing_of(folder)
    if found is None:
        return set()
    listing, relative = found
    prefix = "" if relative == "." else relative + "/"
    return {path[len(prefix) :] for path in listing if path.startswith(prefix) and "/" not in path[len(prefix) :]}


_THREAD = threading.local()
_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _active() -> dict[str, Path]:
    """The working copies open in this thread, by repository."""
    copies: dict[str, Path] | None = getattr(_THREAD, "copies", None)
    if copies is None:
        copies = _THREAD.copies = {}
    return copies


def _stores() -> dict[Path, RepositoryStore]:
    """The store of each working copy open in this thread, by the copy's path."""
    stores: dict[Path, RepositoryStore] | None = getattr(_THREAD, "stores", None)
    if stores is None:
        stores = _THREAD.stores = {}
    return stores


def archive_upload(repo_root: Path, backup_id: str, name: str) -> Any:
    """An ``ArchiveCopy`` (pack.py) that sends the new backup's archive ``name`` to the store as it
    is packed into the working copy ``repo_root`` (engines/backup/sftp_stream.py); None when the
    repository is local, encrypted at rest, or not writable that way."""
    store = _stores().get(Path(repo_root))
    if store is None:
        return None
    cipher = _cipher(store)
    if cipher is None or cipher.key is not None:
        return None  # encrypted files are sealed whole by the cipher layer on upload
    open_stream = getattr(cipher.inner, "open_stream", None)  # an SftpStore's
    return open_stream(f"{UPLOAD_DIR}/{backup_id}.dir/{name}") if open_stream is not None else None


def _session(
    store: RepositoryStore,
    local: Path,
    shown: str,
    fetch: Fetch,
    archives_for: Callable[[Path], set[str]] | None,
    write: bool,
    create: bool,
) -> Iterator[Path]:
    pulled = _pull(store, local, fetch, archives_for, shown=shown, create=create, write=write)
    with _LISTINGS_LOCK:
        _LISTINGS[str(local.resolve())] = pulled.remote
    yield local
    if write:
        _record_encryption(store, local)
        push_changes(store, local, pulled.remote, pulled.snapshot)


@contextmanager
def _held(location: Path | SftpLocation, shown: str) -> Iterator[None]:
    """One session at a time per repository on this host, for the whole pull-work-push.

    Between threads a lock of this process; between processes a file lock: the repository's own
    ``.lock`` when it is local, one in ``$TMPDIR`` named after the URL when it is remote (writers
    on other hosts are not serialized: a repository has one writer, its node).
    """
    with _PROCESS_LOCKS_GUARD:
        thread_lock = _PROCESS_LOCKS.setdefault(shown, threading.Lock())
    with thread_lock:
        if isinstance(location, SftpLocation):
            name = hashlib.sha256(location.url.encode()).hexdigest()[:16]
            lock_path = Path(tempfile.gettempdir()) / f"drconsole-sftp-{name}.lock"
        elif location.is_dir():
            lock_path = location / ".lock"
        else:
            yield  # a repository about to be created: nobody else can have it open yet
            return
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _pull(
    store: RepositoryStore,
    local: Path,
    fetch: Fetch,
    archives_for: Callable[[Path], set[str]] | None,
    *,
    shown: str,
    create: bool,
    write: bool,
) -> _Pulled:
    """The small files first; then, once the repository and the key are known to fit, the bulk asked for."""
    remote = {item.path: item for item in store.files() if not item.path.startswith(_SKIPPED_PREFIXES)}
    if MARKER not in remote and not create:
        raise RepositoryError(
            f"{shown} is not a drconsole backup repository (no {MARKER})",
            hint="check --repo; `backup create` makes a new one",
        )
    bulk: list[str] = []
    for path in remote:
        if path.startswith("logs/"):
            continue  # written by operations, read by people on the repository host
        if bulk_kind(path) is None:
            store.fetch(path, local / path)
        else:
            bulk.append(path)
    _check_key(store, local, needs_key=write or fetch != "metadata" or archives_for is not None)
    segments = [path for path in bulk if bulk_kind(path) == "segment"]
    for path in segments if fetch in ("all", "wal") else []:
        store.fetch(path, local / path)
    wanted = archives_for(local) if archives_for is not None else set()  # knowing the WAL there is
    for path in bulk:
        if path not in segments and (fetch == "all" or backup_dir(path) in wanted):
            store.fetch(path, local / path)
    if (local / MARKER).exists():
        for name in ("daily", "weekly", "monthly", "wal-archive", "logs"):
            (local / name).mkdir(exist_ok=True)
    return _Pulled(remote, _scan(local))


def _scan(local: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for folder, _dirs, names in os.walk(local):
        for name in names:
            path = Path(folder) / name
            relative = path.relative_to(local).as_posix()
            if relative.startswith(_SKIPPED_PREFIXES):
                continue
            info = path.stat()
            found[relative] = (info.st_size, info.st_mtime_ns)
    return found


def push_changes(
    store: RepositoryStore, local: Path, remote: dict[str, StoredFile], snapshot: dict[str, tuple[int, int]]
) -> None:
    """Make ``store`` hold what ``local`` holds now, for the files it held or pulled (module docstring)."""
    now = _scan(local)
    remote_dirs = {folder for folder in map(backup_dir, remote) if folder is not None}
    local_dirs = {folder for folder in map(backup_dir, now) if folder is not None}
    for folder in sorted(remote_dirs - local_dirs):
        if not (local / folder).exists():
            store.remove_directory(folder)
    new_dirs = local_dirs - remote_dirs
    for path in sorted(path for path in now if path not in snapshot and backup_dir(path) not in new_dirs):
        try:
            store.put(local / path, path)
        except ArchiveConflictError:
            if not path.startswith("logs/"):
                raise  # a log of another run with the same name and second: theirs stays
    for path in sorted(path for path in now if path in snapshot and now[path] != snapshot[path]):
        store.replace(local / path, path)
    for folder in sorted(new_dirs):
        store.put_directory(local / folder, folder)
    for path in sorted(
        path for path in snapshot if path not in now and backup_dir(path) not in remote_dirs - local_dirs
    ):
        store.remove(path)
