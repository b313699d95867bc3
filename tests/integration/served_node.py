"""A real ``drconsole node serve`` process that a test kills and starts again (``integration.served_node``)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from drills.node import ROOT, free_port, serve_command, wait_for_node

__all__ = ["ROOT", "ServedNode", "free_port"]


class ServedNode:
    """One node on a fixed loopback port and data dir: ``start`` again after ``kill`` serves the same data."""

    def __init__(self, data_dir: Path, *, name: str = "orders", engine: str = "lsm", port: int | None = None) -> None:
        self.data_dir, self.name, self.engine = data_dir, name, engine
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> float:
        """Start the process; returns the time it first answered ``GET /ready`` with 200."""
        self.process = subprocess.Popen(
            serve_command(self.engine, self.data_dir, self.port, "--name", self.name),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        wait_for_node(self.process, self.url, timeout=timeout, path="/ready", up=lambda status: status == 200)
        return time.time()

    def write(self, count: int) -> None:
        """``count`` keys ``order:NNNN`` = ``paid``, each acknowledged once durable."""
        with httpx.Client(base_url=self.url, timeout=5) as client:
            for index in range(count):
                client.put(f"/kv/order:{index:04d}", content=b"paid").raise_for_status()

    def serves(self, count: int) -> bool:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            return all(client.get(f"/kv/order:{index:04d}").content == b"paid" for index in range(count))

    def kill(self) -> None:
        """SIGKILL: the process dies with its data dir as it was."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
