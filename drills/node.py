"""Drills that need a node process: ``drconsole node serve`` in a real subprocess on a free loopback
port, a load through the node API (NodeClient) with the ledger, and the process faults.

The node is started as a command (``python -m console.cli node serve``), never imported, so the
playbook layer stays free of the console.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

import httpx

from engines.node.client import NodeClient

__all__ = ["NodeProcess", "NodeLoad", "free_port", "node_serves", "serve_command", "wait_for_node"]

ROOT = Path(__file__).resolve().parents[1]


def node_serves(url: str) -> tuple[bool, str]:
    """The node at ``url`` takes a write and reads it back through its API."""
    try:
        with NodeClient(url, timeout=5.0) as client:
            probe = f"{time.time_ns()}".encode()
            client.put(b"__drill_probe__", probe)
            if client.get(b"__drill_probe__") != probe:
                return False, f"the node at {url} does not read back its write"
            client.delete(b"__drill_probe__")
    except Exception as exc:  # noqa: BLE001 - not serving, and why
        return False, f"the node at {url} does not serve: {type(exc).__name__}: {exc}"
    return True, f"the node at {url} serves reads and writes"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def serve_command(
    engine: str | None, data_dir: Path, port: int, *options: str, launcher: Sequence[str] = ()
) -> list[str]:
    """The argv of ``drconsole node serve`` hosting ``engine`` on ``data_dir`` at ``port``, plus ``options``.

    ``engine`` None: the node reads it from the data dir. ``launcher``: how drconsole is run; by
    default this Python with ``-m console.cli``, from ROOT with ROOT on PYTHONPATH (a checkout need
    not be installed); ``[path/to/drconsole]`` runs the installed entry point.
    """
    engine_option = ["--engine", engine] if engine else []
    command = list(launcher) or [sys.executable, "-m", "console.cli"]
    return [*command, "node", "serve", *engine_option, "--data-dir", str(data_dir), "--port", str(port), *options]


def wait_for_node(
    process: subprocess.Popen[bytes],
    url: str,
    *,
    timeout: float,
    path: str = "/health",
    up: Callable[[int], bool] = lambda status: status < 500,
    what: str = "node",
    log_path: Path | None = None,
) -> None:
    """Until the node started as ``process`` answers ``path`` with a status that ``up`` accepts.

    By default a healthy /health; a start that expects an unhealthy node (a corrupt store, a full
    disk: /health answers 503) accepts 503 too, and /ready with 200 waits until it serves. Raises RuntimeError
    when the process exits first (with its log's tail when there is one) or at ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:] if log_path is not None and log_path.exists() else ""
            raise RuntimeError(
                f"{what} exited with {process.returncode}" + (f"; {log_path}:\n{tail}" if log_path is not None else "")
            )
        try:
            if up(httpx.get(f"{url}{path}", timeout=0.5).status_code):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{what} on {url} did not answer {path} in {timeout:g} s")


class NodeProcess:
    """``drconsole node serve --data-dir D`` in a subprocess (sync durability: acked = fsynced)."""

    def __init__(self, data_dir: Path, engine: str, log_path: Path) -> None:
        self.data_dir, self.engine, self.log_path = data_dir, engine, log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0, *, same_port: bool = False) -> NodeProcess:
        """Start the node; ``same_port``: a restart where the clients already look (the load goes on)."""
        if not same_port:
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                serve_command(self.engine, self.data_dir, self.port, "--durability", "sync", "--log-level", "warning"),
                cwd=ROOT,
                stdout=log,
                stderr=log,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        wait_for_node(self.process, self.url, timeout=timeout, log_path=self.log_path)
        return self

    def alive(self) -> bool:
        """Running (or stopped by a signal), not exited: a killed node is reaped by ``reap``."""
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def reap(self, timeout: float = 10.0) -> int | None:
        """Wait for a process that was killed (no zombie keeps the lock file open)."""
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        stop_child(self.process)


def stop_child(process: subprocess.Popen[bytes] | None) -> None:
    """End a node process we started: SIGCONT first (a drill may have stopped it), SIGTERM, then SIGKILL."""
    if process is None or process.poll() is not None:
        return
    try:
        os.kill(process.pid, signal.SIGCONT)
    except OSError:
        pass
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class BackgroundLoad:
    """A writer thread (``_run``) and its counters: what every drill load shares."""

    def __init__(self, name: str) -> None:
        self.acked = self.failed = self.number = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        self._thread.start()
        return self

    def wait_for(self, acked: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.acked < acked and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class NodeLoad(BackgroundLoad):
    """A writer thread putting keys through the node API; each put is ledgered after its 2xx (acked)."""

    def __init__(self, url: str, ledger: Any, *, prefix: str = "n", value_size: int = 128) -> None:
        self.url, self.ledger, self.prefix, self.value_size = url, ledger, prefix, value_size
        super().__init__("drill-load")

    def _run(self) -> None:
        # a short timeout: a hung node must not hold the load (and the drill) for the client's default 5 s
        with NodeClient(self.url, timeout=2.0) as client:
            while not self._stop.is_set():
                key = f"{self.prefix}{self.number:07d}".encode()
                value = os.urandom(self.value_size // 2).hex().encode()
                self.number += 1
                try:
                    lsn = client.put(key, value)
                except Exception:  # noqa: BLE001 - not acknowledged: not in the ledger
                    self.failed += 1
                    if self.failed > 3:
                        time.sleep(0.02)
                    continue
                self.ledger.ack(key, value, lsn if isinstance(lsn, int) else None)
                self.acked += 1
