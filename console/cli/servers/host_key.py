"""The SSH server's host key: read one (refusing a key others can read, as sshd does), or make one."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import asyncssh

from engines.errors import InvalidArgumentError, SafetyRefusal, map_os_error

__all__ = ["generate_host_key", "load_host_key"]

_GENERATE = "drconsole serve ssh --generate-host-key FILE (or ssh-keygen -t ed25519 -f FILE -N '')"


def load_host_key(path: Path) -> asyncssh.SSHKey:
    """The private key in ``path``; ``InvalidArgumentError`` (exit 2) when missing, unreadable or exposed."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InvalidArgumentError(
            f"serve ssh: host key {path} does not exist", hint=f"make one: {_GENERATE}"
        ) from None
    except OSError as exc:
        raise InvalidArgumentError(f"serve ssh: host key {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(mode):
        raise InvalidArgumentError(f"serve ssh: host key {path} is not a file")
    if mode & 0o077:
        raise InvalidArgumentError(
            f"serve ssh: host key {path} is readable by others (mode {mode & 0o777:o})",
            hint=f"chmod 600 {path}: whoever reads it can impersonate this server",
        )
    try:
        return asyncssh.read_private_key(path)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise InvalidArgumentError(
            f"serve ssh: host key {path} is not an unencrypted private key ({exc})", hint=f"make one: {_GENERATE}"
        ) from exc
    except OSError as exc:
        raise InvalidArgumentError(f"serve ssh: host key {path}: {exc.strerror or exc}") from exc


def generate_host_key(path: Path) -> str:
    """Write a new ed25519 key to ``path`` (0600) and ``path.pub``; its SHA256 fingerprint. Never overwrites."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    public = Path(f"{path}.pub")
    for target in (path, public):
        if target.exists():
            raise SafetyRefusal(
                f"serve ssh: {target} exists; not overwritten", hint="move it away first, or give another FILE"
            )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, key.export_private_key())
            os.fsync(fd)
        finally:
            os.close(fd)
        public.write_bytes(key.export_public_key())
    except FileExistsError as exc:
        raise SafetyRefusal(f"serve ssh: {path} exists; not overwritten") from exc
    except OSError as exc:
        raise map_os_error(exc, f"writing the host key {path}") from exc
    return str(key.get_fingerprint())
