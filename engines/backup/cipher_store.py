"""A repository store that keeps the big files encrypted: a wrapper around any ``RepositoryStore``.

Archives and archived WAL segments (``store.bulk_kind``) are stored as ``<name>.enc``
(``engines/backup/cipher.py``'s format); everything else (the marker, metadata, ``SHA256SUMS``,
the WAL manifest) stays readable, so a repository can be listed without the key and its
checksums still name the plain files. The wrapper shows the store's files under their plain names,
so the backup code never sees ciphertext: ``fetch`` decrypts into the working copy, ``put``
encrypts on the way out.

Without a key the wrapper still lists, and still moves the readable files; touching an encrypted
one is refused with the reason (``EncryptionKeyError``, exit 2) instead of a checksum mismatch.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from engines.backup.checksums import sha256_file
from engines.backup.cipher import SUFFIX, EncryptionKey, decrypt_file, encrypt_file
from engines.backup.errors import ArchiveConflictError
from engines.backup.store import RepositoryStore, StoredFile, bulk_kind
from engines.errors import InvalidArgumentError

__all__ = ["CipherStore", "EncryptionKeyError"]


class EncryptionKeyError(InvalidArgumentError):
    """The repository's files are encrypted and no key (or another key) was given."""


class CipherStore:
    """``inner`` with its archives and WAL segments encrypted under ``key`` (see the module docstring)."""

    def __init__(self, inner: RepositoryStore, key: EncryptionKey | None, scratch: Path | None = None) -> None:
        self.inner = inner
        self.key = key
        self.description = inner.description
        self._sealed: set[str] = set()
        self._scratch = Path(tempfile.mkdtemp(prefix="drconsole-cipher-", dir=scratch))

    @property
    def append_only(self) -> bool:
        return bool(getattr(self.inner, "append_only", False))

    def _need_key(self, path: str) -> EncryptionKey:
        if self.key is None:
            raise EncryptionKeyError(
                f"{self.description}: {path} is encrypted", hint="give the repository's key with --encrypt-key FILE"
            )
        return self.key

    def _temp(self, name: str) -> Path:
        return self._scratch / hashlib.sha256(name.encode()).hexdigest()[:24]

    def exists(self) -> bool:
        return self.inner.exists()

    def files(self, under: str = "") -> list[StoredFile]:
        shown = []
        for item in self.inner.files(under):
            if item.path.endswith(SUFFIX) and bulk_kind(item.path[: -len(SUFFIX)]):
                plain = item.path[: -len(SUFFIX)]
                self._sealed.add(plain)
                shown.append(StoredFile(plain, item.size, sealed=True))
            else:
                shown.append(item)
        return shown

    def fetch(self, path: str, local: Path) -> None:
        if path not in self._sealed:
            self.inner.fetch(path, local)
            return
        key = self._need_key(path)
        sealed = self._temp(path)
        self.inner.fetch(path + SUFFIX, sealed)
        try:
            local.parent.mkdir(parents=True, exist_ok=True)
            decrypt_file(sealed, local, key, name=f"{self.description}/{path}{SUFFIX}")
        finally:
            sealed.unlink(missing_ok=True)

    def sha256(self, path: str) -> str | None:
        """The SHA-256 of the plain bytes (decrypting an encrypted file to hash it)."""
        if path not in self._sealed and not (self.key is not None and bulk_kind(path)):
            return self.inner.sha256(path)
        if self.inner.sha256(path + SUFFIX) is None:
            return self.inner.sha256(path)
        self._sealed.add(path)
        plain = self._temp(path + ".plain")
        try:
            self.fetch(path, plain)
            return sha256_file(plain)
        finally:
            plain.unlink(missing_ok=True)

    def _sealed_copy(self, local: Path, path: str) -> Path:
        target = self._temp(path + SUFFIX)
        encrypt_file(local, target, self._need_key(path))
        return target

    def put(self, local: Path, path: str) -> None:
        if self.key is None or not bulk_kind(path):
            self.inner.put(local, path)
            return
        stored = self.sha256(path)
        if stored is not None:
            if stored == sha256_file(local):
                return
            raise ArchiveConflictError(
                f"{self.description} already holds a different {path}", hint="a backup file is never overwritten"
            )
        sealed = self._sealed_copy(local, path)
        try:
            self.inner.put(sealed, path + SUFFIX)
        finally:
            sealed.unlink(missing_ok=True)

    def replace(self, local: Path, path: str) -> None:
        if self.key is None or not bulk_kind(path):
            self.inner.replace(local, path)
            return
        sealed = self._sealed_copy(local, path)
        try:
            self.inner.replace(sealed, path + SUFFIX)
        finally:
            sealed.unlink(missing_ok=True)

    def put_directory(self, local: Path, path: str) -> None:
        if self.key is None:
            self.inner.put_directory(local, path)
            return
        staged = self._temp(path + "/")
        try:
            for file in sorted(item for item in local.rglob("*") if item.is_file()):
                relative = file.relative_to(local).as_posix()
                if bulk_kind(f"{path}/{relative}"):
                    (staged / relative).parent.mkdir(parents=True, exist_ok=True)
                    encrypt_file(file, staged / (relative + SUFFIX), self.key)
                else:
                    (staged / relative).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(file, staged / relative)
            self.inner.put_directory(staged, path)
        finally:
            shutil.rmtree(staged, ignore_errors=True)

    def remove(self, path: str) -> None:
        self.inner.remove(path + SUFFIX if path in self._sealed else path)

    def remove_directory(self, path: str) -> None:
        self.inner.remove_directory(path)

    def close(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)
        self.inner.close()
