"""Helpers for the serve tests: keys, users files, a small real fleet, the server process, an ssh terminal.

``SshTerminal`` runs the system ``ssh -tt`` on a pseudo-terminal of a given size and feeds what it
receives to a pyte screen, so a test reads the console as a person would see it.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Any

import asyncssh
import pyte

from engines import create_engine

ROOT = Path(__file__).resolve().parents[3]
SSH = shutil.which("ssh")


def make_key(path: Path) -> str:
    """A new ed25519 client key at ``path`` (0600, as ssh insists); its public line."""
    key = asyncssh.generate_private_key("ssh-ed25519", comment=path.name)
    path.write_bytes(key.export_private_key())
    path.chmod(0o600)
    return key.export_public_key().decode().strip()


def write_users(path: Path, users: list[tuple[str, str, list[str]]]) -> Path:
    blocks = [f'[[user]]\nname = "{name}"\nrole = "{role}"\nkeys = {json.dumps(keys)}\n' for name, role, keys in users]
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


def make_fleet(root: Path) -> Path:
    """One real lsm node read from its data dir (so a run, if anything could start one, would be real)."""
    data_dir = root / "nodes" / "orders"
    with create_engine(data_dir, backend="lsm", node_name="orders") as engine:
        engine.put(b"order:1", b"paid")
    (root / "reports").mkdir()
    config = root / "drconsole.toml"
    config.write_text(
        '[console]\nrefresh_seconds = 1.0\nreport_dir = "reports"\n\n'
        '[[node]]\nname = "orders"\nengine = "lsm"\ndata_dir = "nodes/orders"\n',
        encoding="utf-8",
    )
    return config


def server_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DRCONSOLE_STATE_DIR=str(root / "state"),
        XDG_DATA_HOME=str(root / "xdg"),
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    env.pop("DRCONSOLE_ROLE", None)
    return env


class ServerProcess:
    """``drconsole serve ...`` in a subprocess; ``port`` is read from its start-up line."""

    def __init__(self, args: list[str], root: Path, *, pattern: str, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.process = subprocess.Popen(
            [sys.executable, "-m", "console", "serve", *args],
            cwd=root,
            env={**server_env(root), **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.port = 0
        found = threading.Event()

        def read() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.lines.append(line)
                match = re.search(pattern, line)
                if match and not self.port:
                    self.port = int(match.group(1))
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(20) or not self.port:
            self.stop()
            raise AssertionError(f"the server did not start: {''.join(self.lines)}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def audit_entries(root: Path) -> list[dict[str, Any]]:
    path = root / "state" / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def wait_until(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class SshTerminal:
    """``ssh -tt USER@127.0.0.1 -p PORT`` on a pty of ``cols`` x ``rows``, read into a pyte screen."""

    def __init__(
        self,
        port: int,
        user: str,
        key: Path,
        *,
        cols: int = 100,
        rows: int = 30,
        command: list[str] | None = None,
        tty: bool = True,
    ) -> None:
        assert SSH is not None, "the system ssh client is needed"
        self.master, self.slave = pty.openpty()
        self._size(cols, rows)
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        self.lock = threading.Lock()
        argv = [
            SSH,
            "-tt" if tty else "-T",
            "-p",
            str(port),
            "-i",
            str(key),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "IdentitiesOnly=yes",
            "-F",
            "/dev/null",
            f"{user}@127.0.0.1",
            *(command or []),
        ]
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            argv, stdin=self.slave, stdout=self.slave, stderr=self.slave, start_new_session=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _size(self, cols: int, rows: int) -> None:
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def _read(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.master], [], [], 0.2)
            except (OSError, ValueError):
                return
            if not ready:
                if self.process.poll() is not None and not select.select([self.master], [], [], 0)[0]:
                    return
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.raw += data
                self.stream.feed(data)

    def text(self) -> str:
        with self.lock:
            return "\n".join(self.screen.display)

    def output(self) -> bytes:
        with self.lock:
            return bytes(self.raw)

    def wait_for(self, needle: str, timeout: float = 15.0) -> str:
        if not wait_until(lambda: needle in self.text(), timeout):
            raise AssertionError(
                f"{needle!r} not on screen after {timeout} s:\n{self.text()}\nraw tail: {self.output()[-400:]!r}"
            )
        return self.text()

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def resize(self, cols: int, rows: int) -> None:
        with self.lock:
            self.screen.resize(rows, cols)
        self._size(cols, rows)
        os.killpg(self.process.pid, signal.SIGWINCH)  # what a terminal emulator does; ssh forwards it

    def exit_code(self, timeout: float = 10.0) -> int:
        code = self.process.wait(timeout)
        # The client's last words ("Permission denied") may still sit in the pty: the reader ends
        # once the process is gone and nothing is left to read, so joining it drains them.
        self._reader.join(timeout)
        return code

    def kill9(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill9()
        self._reader.join(2)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
