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
store. The copy lives under ``$TMPDIR`` and is removed afterwards; the process holds the store
for one operation at a time, and one repository has one writer (its node), as for a local one.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from engines.backup.errors import ArchiveConflictError, RepositoryError
from engines.backup.location import (SftpLocation, forget_working_copy, parse_location, register_working_copy)
from engines.backup.store import LocalStore, RepositoryStore, StoredFile

__all__ = ["Access", "access", "current_access", "open_store", "working_copy", "push_changes", "Fetch"]

Fetch = Literal["metadata", "wal", "all"]
_SEGMENT = re.compile(r"^wal-archive/\d{20}\.wal$")
_TIER_FILE = re.compile(r"^(daily|weekly|monthly)/([^/]+)/(.+)$")
_SKIPPED_PREFIXES = (".tmp/", ".lock")
MARKER = "drconsole-backup.json"


@dataclass(frozen=True)
class Access:
    """How to reach and read repositories in this context (the CLI sets it from its options)."""

    ssh_key: Path | None = None


_ACCESS: ContextVar[Access] = ContextVar("drconsole_backup_access", default=Access())


def current_access() -> Access:
    return _ACCESS.get()


@contextmanager
def access(**changes: object) -> Iterator[Access]:
    """Use these access settings (``ssh_key=...``) for the repositories opened inside the block."""
    token = _ACCESS.set(replace(_ACCESS.get(), **changes))  # type: ignore[arg-type]
    try:
        yield _ACCESS.get()
    finally:
        _ACCESS.reset(token)


def open_store(location: Path | SftpLocation) -> RepositoryStore:
    if isinstance(location, SftpLocation):
        from engines.backup.sftp_store import SftpStore  # asyncssh loads only for remote repositories

        return SftpStore(location, key_file=current_access().ssh_key)
    return LocalStore(location)


def _bulk(path: str) -> Literal["segment", "archive", None]:
    """Whether ``path`` is one of the big files a metadata-only copy leaves on the store."""
    if _SEGMENT.match(path):
        return "segment"
    tier_file = _TIER_FILE.match(path)
    if tier_file is not None:
        name = tier_file.group(3)
        if name != "SHA256SUMS" and not name.endswith(".metadata.json"):
            return "archive"
    return None


def _backup_dir(path: str) -> str | None:
    match = _TIER_FILE.match(path)
    return None if match is None else f"{match.group(1)}/{match.group(2)}"


@dataclass
class _Pulled:
    remote: dict[str, StoredFile]
    snapshot: dict[str, tuple[int, int]]


@contextmanager
def working_copy(repo: str | os.PathLike[str] | SftpLocation, *, fetch: Fetch = "metadata",
                 archives_for: Callable[[Path], set[str]] | None = None, write: bool = True,
                 create: bool = False) -> Iterator[Path]:
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
    if not isinstance(location, SftpLocation):
        yield location
        return
    store = open_store(location)
    local = Path(tempfile.mkdtemp(prefix="drconsole-repo-"))
    register_working_copy(local, location.url)
    try:
        pulled = _pull(store, local, fetch, archives_for)
        if MARKER not in pulled.remote and not create:
            raise RepositoryError(f"{location.url} is not a drconsole backup repository (no {MARKER})",
                                  hint="check --repo; `backup create` makes a new one")
        yield local
        if write:
            push_changes(store, local, pulled.remote, pulled.snapshot)
    finally:
        forget_working_copy(local)
        store.close()
        shutil.rmtree(local, ignore_errors=True)  # our private copy; the repository is the store


def _pull(store: RepositoryStore, local: Path, fetch: Fetch,
          archives_for: Callable[[Path], set[str]] | None) -> _Pulled:
    remote = {item.path: item for item in store.files() if not item.path.startswith(_SKIPPED_PREFIXES)}
    later: list[str] = []
    for path in remote:
        kind = _bulk(path)
        if path.startswith("logs/"):
            continue  # written by operations, read by people on the repository host
        if kind is None or fetch == "all" or (kind == "segment" and fetch == "wal"):
            store.fetch(path, local / path)
        elif kind == "archive":
            later.append(path)
    if archives_for is not None and later:
        wanted = archives_for(local)
        for path in later:
            if _backup_dir(path) in wanted:
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


def push_changes(store: RepositoryStore, local: Path, remote: dict[str, StoredFile],
                 snapshot: dict[str, tuple[int, int]]) -> None:
    """Make ``store`` hold what ``local`` holds now, for the files it held or pulled (module docstring)."""
    now = _scan(local)
    remote_dirs = {folder for folder in map(_backup_dir, remote) if folder is not None}
    local_dirs = {folder for folder in map(_backup_dir, now) if folder is not None}
    for folder in sorted(remote_dirs - local_dirs):
        if not (local / folder).exists():
            store.remove_directory(folder)
    new_dirs = local_dirs - remote_dirs
    for path in sorted(path for path in now if path not in snapshot and _backup_dir(path) not in new_dirs):
        try:
            store.put(local / path, path)
        except ArchiveConflictError:
            if not path.startswith("logs/"):
                raise  # a log of another run with the same name and second: theirs stays
    for path in sorted(path for path in now if path in snapshot and now[path] != snapshot[path]):
        store.replace(local / path, path)
    for folder in sorted(new_dirs):
        store.put_directory(local / folder, folder)
    for path in sorted(path for path in snapshot if path not in now and _backup_dir(path) not in remote_dirs - local_dirs):
        store.remove(path)
