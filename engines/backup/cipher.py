"""Encryption at rest: AES-256-GCM in chunks, with a 32-byte key file (``--encrypt-key FILE``).

An encrypted file (``<name>.enc`` in the repository) is::

    header   b"DRCENC1\\n" | chunk size (4 bytes, big-endian) | nonce prefix (8 random bytes)
    chunks   AES-256-GCM(key, nonce = prefix | chunk number (4 bytes, big-endian),
                         aad = header | chunk number | 1 if last chunk else 0) -> ciphertext | 16-byte tag

Each chunk is authenticated on its own, so a file streams through in bounded memory, and its
number and "last" flag are in the associated data, so chunks cannot be reordered, dropped or the
file cut short without the tag check failing. An empty file is one empty last chunk. The nonce
prefix is random per file: a key encrypts at most 2**32 chunks per file, and collisions of the
64-bit prefix are negligible for the number of files a repository holds.

The key never goes into an environment variable or the repository; the repository records only
its id (the first 16 hex digits of SHA-256 of ``"drconsole-key-id" + key``) to tell a wrong key
from damage. ``README.md`` holds a standalone decrypter (Python + ``cryptography``).
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

from engines.backup.errors import BackupCorruptionError
from engines.errors import InvalidArgumentError

__all__ = [
    "MAGIC",
    "CHUNK_BYTES",
    "SUFFIX",
    "EncryptionKey",
    "encrypt_file",
    "decrypt_file",
    "is_encrypted",
    "plain_size",
]

MAGIC = b"DRCENC1\n"
CHUNK_BYTES = 1 << 20
SUFFIX = ".enc"
_HEADER = struct.Struct(">8sI8s")
TAG_BYTES = 16


class EncryptionKey:
    """A 32-byte AES-256 key read from a file (raw 32 bytes, or 64 hex digits and a newline)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise InvalidArgumentError("an encryption key must be 32 bytes")
        # Loaded with the first key: 6 ms of every backup command's start-up, and most
        # repositories are not encrypted.
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(b"drconsole-key-id" + key).hexdigest()[:16]

    @classmethod
    def from_file(cls, path: Path) -> EncryptionKey:
        """Raises InvalidArgumentError (exit 2): unreadable, or neither 32 bytes nor 64 hex digits."""
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise InvalidArgumentError(
                f"cannot read the encryption key {path}: {exc.strerror}",
                hint="make one with: head -c 32 /dev/urandom > KEY && chmod 600 KEY",
            ) from exc
        text = raw.strip()
        if len(raw) == 32:
            return cls(raw)
        if len(text) == 64:
            try:
                return cls(bytes.fromhex(text.decode("ascii")))
            except ValueError:
                pass
        raise InvalidArgumentError(
            f"{path} is not an encryption key: {len(raw)} bytes, want 32 (or 64 hex digits)",
            hint="make one with: head -c 32 /dev/urandom > KEY && chmod 600 KEY",
        )

    def encrypt_chunk(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        return self._aead.encrypt(nonce, data, aad)

    def decrypt_chunk(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
        return self._aead.decrypt(nonce, data, aad)


def plain_size(sealed_size: int, chunk_bytes: int = CHUNK_BYTES) -> int | None:
    """The size of the plain bytes of an encrypted file of ``sealed_size`` bytes (None: no such file).

    Every chunk but the last holds ``chunk_bytes`` and the last 0 to ``chunk_bytes``, each with its
    tag: the sealed size alone says how many chunks there are, so sizes check without a read.
    """
    body = sealed_size - _HEADER.size - TAG_BYTES
    if body < 0 or chunk_bytes <= 0:
        return None
    full = body // (chunk_bytes + TAG_BYTES)
    return body - full * TAG_BYTES


def is_encrypted(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(len(MAGIC)) == MAGIC


def encrypt_file(source: Path, target: Path, key: EncryptionKey, *, chunk_bytes: int = CHUNK_BYTES) -> None:
    """Write ``source`` encrypted to ``target`` (the format in the module docstring)."""
    header = _HEADER.pack(MAGIC, chunk_bytes, os.urandom(8))
    prefix = header[-8:]
    with open(source, "rb") as plain, open(target, "wb") as out:
        out.write(header)
        number = 0
        chunk = plain.read(chunk_bytes)
        while True:
            following = plain.read(chunk_bytes) if len(chunk) == chunk_bytes else b""
            last = not following
            counter = struct.pack(">I", number)
            out.write(key.encrypt_chunk(prefix + counter, chunk, header + counter + bytes([last])))
            if last:
                break
            chunk, number = following, number + 1


def decrypt_file(source: Path, target: Path, key: EncryptionKey, *, name: str | None = None) -> None:
    """Write ``source`` decrypted to ``target``.

    Raises:
        BackupCorruptionError (exit 1): not an encrypted file, a chunk fails its tag (damage, or
            another key: the caller compares key ids first to tell them apart), or it is cut short.
    """
    from cryptography.exceptions import InvalidTag  # an EncryptionKey has loaded cryptography already

    label = name or str(source)
    with open(source, "rb") as sealed, open(target, "wb") as out:
        header = sealed.read(_HEADER.size)
        if len(header) != _HEADER.size or header[:8] != MAGIC:
            raise BackupCorruptionError(f"{label} is not a drconsole encrypted file", file=label)
        chunk_bytes = _HEADER.unpack(header)[1]
        prefix, number = header[-8:], 0
        chunk = sealed.read(chunk_bytes + TAG_BYTES)
        while True:
            following = sealed.read(chunk_bytes + TAG_BYTES) if len(chunk) == chunk_bytes + TAG_BYTES else b""
            last = not following
            counter = struct.pack(">I", number)
            try:
                out.write(key.decrypt_chunk(prefix + counter, chunk, header + counter + bytes([last])))
            except InvalidTag:
                raise BackupCorruptionError(
                    f"{label}: chunk {number} fails authentication (damaged, cut short, or encrypted with another key)",
                    file=label,
                ) from None
            if last:
                return
            chunk, number = following, number + 1
