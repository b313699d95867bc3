"""Fixtures for node tests: free loopback ports, nodes in threads, nodes in real subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from integration.node.node_support import ROOT, RUNNER, free_port

from engines.node.config import NodeConfig
from engines.node.server import ServerThread


class NodeProcess:
    """``drconsole node serve`` in a real subprocess."""

    def __init__(self, data_dir: Path, *extra: str, engine: str = "lsm", port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = ["node", "serve", "--engine", engine, "--data-dir", str(data_dir), "--port", str(self.port), *extra]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> NodeProcess:
        self.process = subprocess.Popen(
            [sys.executable, str(RUNNER), *self.args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"node exited with {self.process.returncode}: {self.process.stderr.read()!r}")  # type: ignore[union-attr]
            try:
                httpx.get(f"{self.url}/health", timeout=0.5)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError(f"node on {self.url} did not come up")

    def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill(signal.SIGTERM)


@pytest.fixture
def node_process(tmp_path: Path) -> Iterator[Callable[..., NodeProcess]]:
    started: list[NodeProcess] = []

    def start(name: str, *extra: str, **kwargs: Any) -> NodeProcess:
        node = NodeProcess(kwargs.pop("data_dir", tmp_path / name), *extra, **kwargs).start()
        started.append(node)
        return node

    yield start
    for node in started:
        try:
            node.stop()
        except Exception:  # noqa: BLE001 - best-effort cleanup of processes this test started
            if node.process is not None and node.process.poll() is None:
                node.process.kill()


@pytest.fixture
def node_thread(tmp_path: Path) -> Iterator[Callable[..., ServerThread]]:
    started: list[ServerThread] = []

    def start(name: str, **options: Any) -> ServerThread:
        options.setdefault("engine", "lsm")
        options.setdefault("data_dir", tmp_path / name)
        options.setdefault("port", free_port())
        options.setdefault("peer_interval", 0.2)
        server = ServerThread(NodeConfig(**options)).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()
