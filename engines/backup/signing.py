"""Signed backups: an ed25519 signature over each backup's metadata and ``SHA256SUMS``.

A checksum file proves nothing against someone who can write the repository: they can replace
an archive and recompute its ``SHA256SUMS``. With ``--sign-key FILE`` (an ed25519 private key,
OpenSSH or PEM format: ``ssh-keygen -t ed25519 -f FILE``) each backup gets
``<id>.signature.json`` beside its metadata::

    {"algorithm": "ed25519", "public_key": "<hex>", "signature": "<base64>", "statement": "drconsole-backup-v1"}

The statement signed is ``drconsole-backup-v1\\n`` + the backup ID + the metadata as canonical JSON
(sorted keys, without the fields ``backup verify`` updates: ``verified``, ``verified_at``,
``restorability``) + the bytes of ``SHA256SUMS``. An incremental backup's ``SHA256SUMS`` names its
WAL segments' hashes, so they are covered too.

The repository's marker records the public key at the first signed backup (``signing``). From
then on ``backup verify`` reports every unsigned or badly signed backup (exit 1) and ``restore``
refuses one; a backup signed by another key is refused at creation (exit 4).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engines.backup.checksums import SUMS_NAME
from engines.backup.metadata import metadata_name
from engines.errors import InvalidArgumentError, SafetyRefusal

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# ``cryptography`` loads only when a key is in play (~13 ms of every backup command's start-up
# otherwise: most repositories are unsigned).

__all__ = [
    "SIGNATURE_SUFFIX",
    "load_signing_key",
    "pinned_key",
    "public_hex",
    "sign_backup",
    "signature_problem",
    "trusted_key",
    "trust_key",
]

SIGNATURE_SUFFIX = ".signature.json"
STATEMENT = "drconsole-backup-v1"
_VOLATILE = ("verified", "verified_at", "restorability")


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """Raises InvalidArgumentError (exit 2): unreadable, encrypted, or not an ed25519 private key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    hint = "make one with: ssh-keygen -t ed25519 -N '' -f FILE (keep FILE on the backed-up host only)"
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidArgumentError(f"cannot read the signing key {path}: {exc.strerror}", hint=hint) from exc
    for loader in (serialization.load_ssh_private_key, serialization.load_pem_private_key):
        try:
            key = loader(raw, password=None)
        except (ValueError, TypeError):
            continue
        if isinstance(key, Ed25519PrivateKey):
            return key
        raise InvalidArgumentError(f"{path} is not an ed25519 key", hint=hint)
    raise InvalidArgumentError(f"{path} is not an unencrypted ed25519 private key (OpenSSH or PEM)", hint=hint)


def pinned_key(path: Path) -> str:
    """The public key (hex) a verifier trusts: from a private key file or its ``.pub`` (OpenSSH/PEM).

    Raises InvalidArgumentError (exit 2): neither.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidArgumentError(f"cannot read the signing key {path}: {exc.strerror}") from exc
    for loader in (serialization.load_ssh_public_key, serialization.load_pem_public_key):
        try:
            public = loader(raw)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        if isinstance(public, Ed25519PublicKey):
            return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    return public_hex(load_signing_key(path))


def public_hex(key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def _statement(folder: Path, backup_id: str) -> bytes:
    metadata = json.loads((folder / metadata_name(backup_id)).read_text(encoding="utf-8"))
    for name in _VOLATILE:
        metadata.pop(name, None)
    canonical = json.dumps(metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return f"{STATEMENT}\n{backup_id}\n{canonical}\n".encode() + (folder / SUMS_NAME).read_bytes()


def sign_backup(folder: Path, backup_id: str, key: Ed25519PrivateKey) -> None:
    """Write ``<id>.signature.json`` in the (staged) backup directory ``folder``."""
    body = {
        "algorithm": "ed25519",
        "public_key": public_hex(key),
        "statement": STATEMENT,
        "signature": base64.b64encode(key.sign(_statement(folder, backup_id))).decode(),
    }
    (folder / f"{backup_id}{SIGNATURE_SUFFIX}").write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


def signature_problem(folder: Path, backup_id: str, trusted: str) -> str | None:
    """None when the backup in ``folder`` is signed by the key ``trusted`` (hex); else what is wrong."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    path = folder / f"{backup_id}{SIGNATURE_SUFFIX}"
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        signature = base64.b64decode(body["signature"], validate=True)
    except FileNotFoundError:
        return "unsigned, but this repository's backups are signed"
    except (OSError, ValueError, KeyError, TypeError):
        return f"{path.name} is damaged"
    if body.get("public_key") != trusted:
        return f"signed by key {str(body.get('public_key'))[:16]}..., not this repository's {trusted[:16]}..."
    try:
        statement = _statement(folder, backup_id)
    except (OSError, ValueError) as exc:
        return f"cannot rebuild what was signed: {exc}"
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(trusted)).verify(signature, statement)
    except (InvalidSignature, ValueError):
        return "bad signature: its metadata or SHA256SUMS changed after it was signed"
    return None


def trusted_key(marker: dict[str, Any], pinned: str | None = None, where: str = "the repository") -> str | None:
    """The key a repository's backups must be signed with: the marker's; ``pinned`` (the verifier's
    own copy, ``--sign-key``) must match it, so rewriting the marker cannot swap the key.

    Raises:
        BackupCorruptionError: ``pinned`` is not the marker's key (or the marker has none).
    """
    signing = marker.get("signing")
    value = signing.get("public_key") if isinstance(signing, dict) else None
    recorded = value if isinstance(value, str) else None
    if pinned is not None and recorded != pinned:
        from engines.backup.errors import BackupCorruptionError

        raise BackupCorruptionError(
            f"{where} records signing key {str(recorded)[:16]}..., not the one given with "
            f"--sign-key ({pinned[:16]}...)",
            hint="someone who can write the repository may have replaced its key",
        )
    return recorded


def trust_key(marker: dict[str, Any], key: Ed25519PrivateKey, where: str) -> bool:
    """Record ``key``'s public half in ``marker`` (first signed backup); whether the marker changed.

    Raises:
        SafetyRefusal: the repository trusts another key.
    """
    known, mine = trusted_key(marker), public_hex(key)
    if known == mine:
        return False
    if known is not None:
        raise SafetyRefusal(
            f"{where} records signing key {known[:16]}...; --sign-key is {mine[:16]}...",
            hint="sign with the repository's key (a new key needs a new repository)",
        )
    marker["signing"] = {"algorithm": "ed25519", "public_key": mine}
    return True
