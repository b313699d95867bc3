"""Where a repository's files are kept: the interface every repository store implements.

::

    RepositoryStore            the operations a repository needs of its storage
      LocalStore               a directory on this host (this module)
      SftpStore                a directory on an SSH host (engines/backup/sftp_store.py)

The backup code itself works on a local directory (``engines/backup/repository.py``); a store
only moves whole files in and out of one (``engines/backup/mirror.py``), so a new kind of store
is these few operations, not a second backup implementation. Paths are relative to the
repository's root and use ``/``.

Writes are atomic and checked: ``put`` uploads to a temporary name, makes it durable, reads its
hash back and only then gives it its final name, so a reader never sees a partial file and a
dropped link leaves nothing but a temp that the next attempt resumes. Files are write-once:
``put`` onto an existing name with the same bytes is a no-op and with other bytes is refused
(``ArchiveConflictError``); only ``replace`` overwrites, for the few files a repository updates
(the WAL archive's manifest, the repository marker, a backup's ``verified`` flag).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from engines import fsio
from engines.backup.checksums import sha256_file
from engines.backup.errors import ArchiveConflictError
from engines.errors import map_os_error
from engines.fsutil import fsync_dir

__all__ = [
    "StoredFile",
    "RepositoryStore",
    "LocalStore",
    "UPLOAD_DIR",
    "bulk_kind",
    "backup_dir",
    "same_bytes_or_conflict",
]

UPLOAD_DIR = ".tmp/upload"
"""Where a store writes files before renaming them into place (temporary, resumable)."""


_SEGMENT = re.compile(r"^wal-archive/\d{20}\.wal$")
_TIER_FILE = re.compile(r"^(daily|weekly|monthly)/([^/]+)/(.+)$")


def bulk_kind(path: str) -> Literal["segment", "archive", None]:
    """Whether ``path`` is one of a repository's big files: an archived WAL segment or a backup's
    archive (anything in a backup directory but its metadata and ``SHA256SUMS``). The others are
    small and rewritten in place; these are write-once, and the ones encryption applies to."""
    if _SEGMENT.match(path):
        return "segment"
    tier_file = _TIER_FILE.match(path)
    if tier_file is not None:
        name = tier_file.group(3)
        if name != "SHA256SUMS" and not name.endswith((".metadata.json", ".signature.json")):
            return "archive"
    return None


def backup_dir(path: str) -> str | None:
    """``daily/<id>`` for a file of a backup directory, else None."""
    match = _TIER_FILE.match(path)
    return None if match is None else f"{match.group(1)}/{match.group(2)}"


@dataclass(frozen=True)
class StoredFile:
    path: str
    size: int
    sealed: bool = False  # stored encrypted: ``size`` is the sealed size (engines/backup/cipher.plain_size)


class RepositoryStore(Protocol):
    """The storage operations of a repository (see the module docstring)."""

    description: str

    def exists(self) -> bool: ...
    def files(self, under: str = "") -> list[StoredFile]: ...
    def fetch(self, path: str, local: Path) -> None: ...
    def sha256(self, path: str) -> str | None: ...
    def put(self, local: Path, path: str) -> None: ...
    def replace(self, local: Path, path: str) -> None: ...
    def put_directory(self, local: Path, path: str) -> None: ...
    def remove(self, path: str) -> None: ...
    def remove_directory(self, path: str) -> None: ...
    def close(self) -> None: ...


def same_bytes_or_conflict(store: RepositoryStore, local: Path, path: str) -> bool:
    """True when ``path`` exists in ``store`` with ``local``'s bytes; False when it does not exist.

    Raises:
        ArchiveConflictError: it exists with other bytes (a write-once file is never overwritten).
    """
    stored = store.sha256(path)
    if stored is None:
        return False
    if stored != sha256_file(local):
        raise ArchiveConflictError(
            f"{store.description} already holds a different {path}",
            hint="a backup file is never overwritten; run `drconsole backup verify` on that repository",
        )
    return True


class LocalStore:
    """A repository directory on this host."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.description = str(self.root)

    def exists(self) -> bool:
        return self.root.is_dir()

    def files(self, under: str = "") -> list[StoredFile]:
        base = self.root / under if under else self.root
        found = []
        for folder, _dirs, names in os.walk(base):
            for name in names:
                path = Path(folder) / name
                try:
                    size = path.stat().st_size
                except FileNotFoundError:
                    continue
                found.append(StoredFile(path.relative_to(self.root).as_posix(), size))
        return sorted(found, key=lambda item: item.path)

    def fetch(self, path: str, local: Path) -> None:
        try:
            local.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.root / path, local)
        except OSError as exc:
            raise map_os_error(exc, f"reading {self.root / path}") from exc

    def sha256(self, path: str) -> str | None:
        target = self.root / path
        return sha256_file(target) if target.is_file() else None

    def put(self, local: Path, path: str) -> None:
        if not same_bytes_or_conflict(self, local, path):
            self._copy(local, path)

    def replace(self, local: Path, path: str) -> None:
        self._copy(local, path)

    def put_directory(self, local: Path, path: str) -> None:
        staging = self.root / UPLOAD_DIR / f"{Path(path).name}.{os.getpid()}.partial"
        try:
            shutil.rmtree(staging, ignore_errors=True)  # ours: a copy an earlier run of ours left unfinished
            staging.parent.mkdir(parents=True, exist_ok=True)
            try:
                fsio.rename(local, staging)  # a working copy on this file system (scratch(): ours to take)
            except OSError:
                shutil.copytree(local, staging)
            for file in staging.rglob("*"):
                if file.is_file():
                    with open(file, "rb+") as handle:
                        fsio.fsync(handle.fileno())
            fsync_dir(staging)
            target = self.root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            fsio.rename(staging, target)
            fsync_dir(target.parent)
        except OSError as exc:
            raise map_os_error(exc, f"writing {self.root / path}") from exc

    def scratch(self) -> Path | None:
        """Where working copies of this repository go: its own disk (a backup taken during a disk-full
        incident must not take the data dir's space, and published files then move by rename)."""
        folder = self.root / ".tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            return None
        return folder

    def remove(self, path: str) -> None:
        (self.root / path).unlink(missing_ok=True)

    def remove_directory(self, path: str) -> None:
        shutil.rmtree(self.root / path, ignore_errors=True)

    def close(self) -> None:
        return None

    def _copy(self, local: Path, path: str) -> None:
        target = self.root / path
        temp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local, temp)
            with open(temp, "rb+") as handle:
                fsio.fsync(handle.fileno())
            if sha256_file(temp) != sha256_file(local):
                raise OSError(f"{temp} does not read back as written")
            fsio.replace(temp, target)
            fsync_dir(target.parent)
        except OSError as exc:
            temp.unlink(missing_ok=True)  # our own temp copy
            raise map_os_error(exc, f"writing {target}") from exc
