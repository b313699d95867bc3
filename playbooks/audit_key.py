"""The audit chain's secret key, and where it and the chain's anchor live (issue 18, item 4).

A plain SHA-256 chain can be recomputed by anyone who can write the log. Keyed with HMAC-SHA256,
an edit needs the key too. The key is therefore kept apart from the log:

- ``$DRCONSOLE_AUDIT_KEY`` names it (the shipped systemd units say ``/etc/drconsole/audit.key``);
- else it is ``drconsole-audit.key`` in the *parent* of the log's directory (for the default
  state dir, ``~/.local/state/drconsole-audit.key``), never beside the log.

It is made on first use: 32 random bytes, written with ``O_CREAT | O_EXCL`` and mode 0600 (a
directory made for it gets 0700), so only the account that writes the audit (root, the service
user) can read it. The file also says when it was made: an unkeyed entry written after that is a
chain rewritten without the key.

The anchor of each log (its newest sequence number and hash, MACed) lives in
``drconsole-audit-anchors/`` beside the key, out of reach of whoever can only write the log's
directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from engines.errors import StorageIOError, map_os_error
from engines.fsutil import fsync_dir

__all__ = ["AuditKey", "key_path_for", "anchor_dir_for", "KEY_ENV", "KEY_NAME"]

KEY_ENV = "DRCONSOLE_AUDIT_KEY"
KEY_NAME = "drconsole-audit.key"
_FORMAT = "drconsole-audit-key/1"


def key_path_for(log_path: Path) -> Path:
    """Where the key of the audit log at ``log_path`` is (see the module docstring)."""
    configured = os.environ.get(KEY_ENV)
    if configured:
        return Path(configured).absolute()
    return Path(log_path).absolute().parent.parent / KEY_NAME


def anchor_dir_for(key_path: Path) -> Path:
    return key_path.parent / "drconsole-audit-anchors"


@dataclass(frozen=True)
class AuditKey:
    """A loaded key: its secret, a public id (entries name it), and when it was made."""

    path: Path
    secret: bytes
    created: str  # ISO 8601 UTC, the same shape as an entry's ``time``

    @property
    def key_id(self) -> str:
        return hashlib.sha256(b"drconsole-audit-key-id|" + self.secret).hexdigest()[:16]

    def mac(self, payload: bytes) -> str:
        return hmac.new(self.secret, payload, hashlib.sha256).hexdigest()

    @classmethod
    def load(cls, path: Path) -> AuditKey | None:
        """The key at ``path``; None when there is none yet.

        Raises:
            StorageIOError: it exists but cannot be read (another account's), or is damaged.
        """
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise map_os_error(exc, f"reading the audit key {path}") from exc
        try:
            data = json.loads(text)
            if data.get("format") != _FORMAT:
                raise ValueError("unknown format")
            return cls(path=path, secret=bytes.fromhex(data["key"]), created=str(data["created"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise StorageIOError(
                f"the audit key {path} is damaged",
                hint="restore it from a backup; a new key cannot check the entries the old one made",
            ) from None

    @classmethod
    def load_or_create(cls, path: Path) -> AuditKey:
        """The key at ``path``, made (0600) when there is none."""
        found = cls.load(path)
        if found is not None:
            return found
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"
        secret = secrets.token_bytes(32)
        text = json.dumps({"format": _FORMAT, "created": created, "key": secret.hex()}) + "\n"
        # Written whole under a private name, then linked into place: link() fails when the name
        # exists, so of two processes making the key at once one wins, and the other never reads
        # a key file that is still empty (O_EXCL on the real name allowed that: "damaged").
        scratch = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        try:
            if not path.parent.exists():
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(descriptor, text.encode("utf-8"))
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.link(scratch, path)
        except FileExistsError:
            found = cls.load(path)  # another process made it first: use theirs
            if found is None:
                raise StorageIOError(f"the audit key {path} vanished while it was being made") from None
            return found
        except OSError as exc:
            raise map_os_error(exc, f"creating the audit key {path}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(scratch)
        fsync_dir(path.parent)
        return cls(path=path, secret=secret, created=created)
