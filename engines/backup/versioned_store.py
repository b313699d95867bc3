"""Rewriting a file where nothing may be renamed or removed: write-once versions, newest wins.

An append-only SFTP account (``internal-sftp -P remove,rmdir,rename,posix-rename,setstat,fsetstat``,
see ``deploy/sftp/``) can add files but not replace one atomically. The few files a repository
rewrites (the WAL archive's ``manifest.json`` and ``SHA256SUMS``, ``observed.json``, the marker)
then go to ``<name>.v000001``, ``.v000002``...: each is a new, write-once file, uploaded and read
back whole before the next version can exist, and a reader takes the highest version (the plain
name is version 0). A dropped link leaves a partial version the next write resumes, never a torn
manifest in place.

A store that can rename (the repository host itself, running ``backup prune``) writes the plain
name again and removes the versions, so they do not pile up past the next prune.

Backup directories are written once anyway; a backup's metadata is not versioned: on an
append-only account ``backup verify`` does not record its outcome in it (a courtesy, not data).
"""

from __future__ import annotations

import re
from pathlib import Path

from engines.backup.store import RepositoryStore, StoredFile, backup_dir

__all__ = ["VersionedStore", "VERSION", "has_versions"]

VERSION = re.compile(r"^(?P<base>.+)\.v(?P<number>\d{6})$")


def has_versions(root: Path) -> bool:
    """Whether a local repository holds versioned files (written through an append-only account)."""
    return any(
        VERSION.match(item.name)
        for folder in (root, root / "wal-archive")
        if folder.is_dir()
        for item in folder.iterdir()
    )


class VersionedStore:
    """``inner`` with rewritten files kept as write-once versions where it cannot rename."""

    def __init__(self, inner: RepositoryStore) -> None:
        self.inner = inner
        self.description = inner.description
        self._versions: dict[str, list[tuple[int, str]]] = {}

    @property
    def append_only(self) -> bool:
        return bool(getattr(self.inner, "append_only", False))

    def exists(self) -> bool:
        return self.inner.exists()

    def files(self, under: str = "") -> list[StoredFile]:
        plain: dict[str, StoredFile] = {}
        newest: dict[str, tuple[int, StoredFile]] = {}
        self._versions = {}
        for item in self.inner.files(under):
            match = VERSION.match(item.path)
            if match is None or backup_dir(item.path) is not None:
                plain[item.path] = item
                continue
            base, number = match.group("base"), int(match.group("number"))
            self._versions.setdefault(base, []).append((number, item.path))
            if base not in newest or number > newest[base][0]:
                newest[base] = (number, StoredFile(base, item.size))
        for base, (_number, item) in newest.items():
            plain[base] = item
        for versions in self._versions.values():
            versions.sort()
        return sorted(plain.values(), key=lambda item: item.path)

    def _real(self, path: str) -> str:
        versions = self._versions.get(path)
        return versions[-1][1] if versions else path

    def fetch(self, path: str, local: Path) -> None:
        self.inner.fetch(self._real(path), local)

    def sha256(self, path: str) -> str | None:
        return self.inner.sha256(self._real(path))

    def put(self, local: Path, path: str) -> None:
        self.inner.put(local, path)

    def replace(self, local: Path, path: str) -> None:
        versions = self._versions.get(path, [])
        if self.append_only:
            if backup_dir(path) is not None:
                return  # a backup's metadata (its verified flag): not rewritten on an append-only account
            number = (versions[-1][0] if versions else 0) + 1
            name = f"{path}.v{number:06d}"
            self.inner.put(local, name)
            self._versions[path] = [*versions, (number, name)]
            return
        self.inner.replace(local, path)
        for _number, name in versions:  # compacted: the plain name holds the newest again
            self.inner.remove(name)
        self._versions.pop(path, None)

    def put_directory(self, local: Path, path: str) -> None:
        self.inner.put_directory(local, path)

    def remove(self, path: str) -> None:
        for _number, name in self._versions.pop(path, []):
            self.inner.remove(name)
        self.inner.remove(path)

    def remove_directory(self, path: str) -> None:
        self.inner.remove_directory(path)

    def close(self) -> None:
        self.inner.close()
