"""A real OpenSSH server (Debian's ``openssh-server``) for the off-site repository tests.

Importable as ``sshd_support`` (``tests`` is on pytest's path). ``start_sshd(workdir)`` generates
a host key and a client key in ``workdir``, writes an ``sshd_config`` of its own (loopback, a free
port, key authentication only, ``internal-sftp`` with the given ``sftp_options``), runs
``sshd -D -e`` as the current user and waits until it answers; ``stop()`` kills it. A client home
(``home``) holds ``.ssh/config`` (``Host drtest`` -> the server), ``known_hosts`` and the key, so
code under test that reads OpenSSH's client files finds them with ``HOME=home``.
"""

from __future__ import annotations

import fcntl
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import promstack
import pytest

__all__ = ["SshServer", "ensure_installed", "start_sshd", "SSHD"]

SSHD = "/usr/sbin/sshd"
HOST_ALIAS = "drtest"


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


@dataclass
class SshServer:
    process: subprocess.Popen[bytes]
    port: int
    user: str
    workdir: Path
    home: Path
    client_key: Path
    log: Path

    @property
    def env(self) -> dict[str, str]:
        """An environment whose ``~/.ssh`` is the test client's."""
        return {**os.environ, "HOME": str(self.home)}

    def url(self, path: str, *, alias: bool = False) -> str:
        """``sftp://user@127.0.0.1:port/path``, or ``sftp://drtest/path`` (everything from ~/.ssh/config)."""
        if alias:
            return f"sftp://{HOST_ALIAS}{path}"
        return f"sftp://{self.user}@127.0.0.1:{self.port}{path}"

    def sessions(self) -> list[int]:
        """Pids of the processes serving connections (every descendant of the listener)."""
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
        found, pending = [], [self.process.pid]
        while pending:
            for child in children.get(pending.pop(), []):
                found.append(child)
                pending.append(child)
        return found

    def drop_connections(self) -> int:
        """kill -9 every session process: each client's link drops at once. How many were killed."""
        killed = 0
        for pid in self.sessions():
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        return killed

    def stop(self) -> None:
        self.drop_connections()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


def _keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "drconsole-test", "-f", str(path)], check=True, timeout=30
    )
    return Path(f"{path}.pub").read_text().strip()


def start_sshd(workdir: Path, *, sftp_options: str = "", extra_config: str = "") -> SshServer:
    """Start sshd on a free loopback port (see the module docstring); the caller stops it in finally."""
    ensure_installed()
    workdir.mkdir(parents=True, exist_ok=True)
    host_key = workdir / "ssh_host_ed25519_key"
    host_public = _keygen(host_key)
    home = workdir / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    client_key = home / ".ssh" / "id_ed25519"
    client_public = _keygen(client_key)
    (workdir / "authorized_keys").write_text(client_public + "\n")
    port = promstack.free_port()
    user = getpass.getuser()
    config = workdir / "sshd_config"
    config.write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {workdir}/sshd.pid
AuthorizedKeysFile {workdir}/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AllowUsers {user}
LogLevel VERBOSE
Subsystem sftp internal-sftp {sftp_options}
{extra_config}
""")
    (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{port} {' '.join(host_public.split()[:2])}\n")
    (home / ".ssh" / "config").write_text(f"""Host {HOST_ALIAS}
    HostName 127.0.0.1
    Port {port}
    User {user}
    IdentityFile {client_key}
    IdentitiesOnly yes
    UserKnownHostsFile {home}/.ssh/known_hosts
""")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    log = workdir / "sshd.log"
    process = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=log.open("wb"), start_new_session=True
    )
    server = SshServer(process, port, user, workdir, home, client_key, log)
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"sshd did not answer on port {port} within 15 s: {log.read_text()[-2000:]}")
        time.sleep(0.1)
