"""A real OpenSSH server (Debian's ``openssh-server``) holding an off-site repository, for drills and tests.

    server = start_sshd(workdir)                                  # loopback, a free port
    server = start_sshd(workdir, listen="10.3.4.3", prefix=lab.prefix("offsite"))   # another host
    server.url("/srv/offsite")     # sftp://USER@ADDRESS:PORT/srv/offsite
    server.env                     # HOME -> a client home whose ~/.ssh knows the server
    server.stop()

``start_sshd`` generates a host key and a client key in ``workdir``, writes an ``sshd_config`` of
its own (the address, a free port, key authentication only, ``internal-sftp`` with the given
``sftp_options``), runs ``sshd -D -e`` as the current user (inside a network namespace when
``prefix`` is ``ip netns exec NS``) and waits until it answers. The client home (``home``) holds
``.ssh/config`` (``Host drtest`` -> the server), ``known_hosts`` and the key, so drconsole finds
everything where OpenSSH's client looks when ``HOME`` points there: no key and no host key is
accepted on the side. ``SshdUnavailable``: sshd or ssh-keygen is not installed.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SshServer", "SshdUnavailable", "start_sshd", "SSHD", "HOST_ALIAS"]

SSHD = "/usr/sbin/sshd"
HOST_ALIAS = "drtest"


class SshdUnavailable(Exception):
    """OpenSSH's server (or ssh-keygen) is not installed here."""


@dataclass
class SshServer:
    process: subprocess.Popen[bytes]
    port: int
    user: str
    workdir: Path
    home: Path
    client_key: Path
    log: Path
    address: str = "127.0.0.1"

    @property
    def env(self) -> dict[str, str]:
        """An environment whose ``~/.ssh`` is the client's."""
        return {**os.environ, "HOME": str(self.home)}

    def url(self, path: str, *, alias: bool = False) -> str:
        """``sftp://user@ADDRESS:port/path``, or ``sftp://drtest/path`` (everything from ~/.ssh/config)."""
        if alias:
            return f"sftp://{HOST_ALIAS}{path}"
        return f"sftp://{self.user}@{self.address}:{self.port}{path}"

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
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "drconsole", "-f", str(path)], check=True, timeout=30
    )
    return Path(f"{path}.pub").read_text().strip()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(address: str, port: int, prefix: list[str]) -> bool:
    """An SSH banner on ADDRESS:PORT, asked from inside the server's namespace when it has one."""
    if not prefix:
        try:
            with socket.create_connection((address, port), timeout=1) as sock:
                return sock.recv(64).startswith(b"SSH-")
        except OSError:
            return False
    probe = f"import socket;s=socket.create_connection(({address!r},{port}),timeout=1);print(s.recv(64)[:4])"
    done = subprocess.run(
        [*prefix, sys.executable, "-c", probe], capture_output=True, text=True, timeout=10, check=False
    )
    return "SSH-" in done.stdout


def start_sshd(
    workdir: Path,
    *,
    sftp_options: str = "",
    extra_config: str = "",
    listen: str = "127.0.0.1",
    prefix: list[str] | None = None,
    timeout: float = 15.0,
) -> SshServer:
    """Start sshd (see the module docstring); the caller stops it in finally."""
    if not Path(SSHD).exists() or shutil.which("ssh-keygen") is None:
        raise SshdUnavailable(f"OpenSSH's server is not installed ({SSHD}; `make system-deps` installs it)")
    prefix = list(prefix or [])
    workdir.mkdir(parents=True, exist_ok=True)
    host_key = workdir / "ssh_host_ed25519_key"
    host_public = _keygen(host_key)
    home = workdir / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    client_key = home / ".ssh" / "id_ed25519"
    client_public = _keygen(client_key)
    (workdir / "authorized_keys").write_text(client_public + "\n")
    port = _free_port()
    user = getpass.getuser()
    config = workdir / "sshd_config"
    config.write_text(f"""Port {port}
ListenAddress {listen}
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
    (home / ".ssh" / "known_hosts").write_text(f"[{listen}]:{port} {' '.join(host_public.split()[:2])}\n")
    (home / ".ssh" / "config").write_text(f"""Host {HOST_ALIAS}
    HostName {listen}
    Port {port}
    User {user}
    IdentityFile {client_key}
    IdentitiesOnly yes
    UserKnownHostsFile {home}/.ssh/known_hosts
""")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    log = workdir / "sshd.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [*prefix, SSHD, "-D", "-e", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    server = SshServer(process, port, user, workdir, home, client_key, log, listen)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}: {log.read_text()[-2000:]}")
        if _answers(listen, port, prefix):
            return server
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(
                f"sshd did not answer on {listen}:{port} within {timeout:g} s: {log.read_text()[-2000:]}"
            )
        time.sleep(0.1)
