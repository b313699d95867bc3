"""A real OpenSSH server (Debian's ``openssh-server``) for the off-site repository tests.

Importable as ``sshd_support`` (``tests`` is on pytest's path). ``start_sshd(workdir)`` installs
openssh-server when it is missing (as root, the way ``make system-deps`` does), then starts the
server of ``drills.sshd`` (the host-loss drill's off-site host) on loopback: a host key
and a client key in ``workdir``, its own ``sshd_config``, a client home (``home``) whose
``.ssh/config`` (``Host drtest``), ``known_hosts`` and key let code under test that reads OpenSSH's
client files find them with ``HOME=home``. ``stop()`` kills it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

import promstack
import pytest

from drills import sshd
from drills.sshd import SSHD, SshServer

__all__ = ["SshServer", "ensure_installed", "start_sshd", "SSHD"]


def ensure_installed() -> None:
    """sshd present, installing openssh-server as root with deploy/install-system-deps.sh (as ``make system-deps``)."""
    if Path(SSHD).exists() and shutil.which("ssh-keygen"):
        return
    if os.geteuid() != 0:
        pytest.fail(
            "openssh-server is not installed and this is not root: run `make system-deps` as root", pytrace=False
        )
    with promstack.INSTALL_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not Path(SSHD).exists():
            promstack._install()
    if not Path(SSHD).exists():
        pytest.fail("sshd still missing after deploy/install-system-deps.sh", pytrace=False)


def start_sshd(workdir: Path, *, sftp_options: str = "", extra_config: str = "") -> SshServer:
    """Start sshd on a free loopback port; the caller stops it in finally."""
    ensure_installed()
    return sshd.start_sshd(workdir, sftp_options=sftp_options, extra_config=extra_config)
