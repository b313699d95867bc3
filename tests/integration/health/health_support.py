"""Helpers of the health tests (importable as ``integration.health.health_support``).

``ServedNode`` is ``drconsole node serve`` in a real subprocess on a free loopback port; the
flippers change one real byte of a real file, chosen where the engine will notice it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from drills.node import free_port

ROOT = Path(__file__).resolve().parents[3]

__all__ = ["ROOT", "ServedNode", "free_port", "wait_until", "fill", "flip_byte", "flip_lsm_block", "Flipped"]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
        except httpx.HTTPError as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")
        time.sleep(interval)


class ServedNode:
    """``python -m console node serve`` on a free port; ``stop()`` (SIGTERM, then SIGKILL) always."""

    def __init__(
        self,
        data_dir: Path,
        *extra: str,
        engine: str = "lsm",
        name: str | None = None,
        port: int | None = None,
        log: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [
            "node",
            "serve",
            "--engine",
            engine,
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--name",
            name or self.data_dir.name,
            *extra,
        ]
        self.log = log or self.data_dir.parent / f"{self.data_dir.name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> ServedNode:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "console", *self.args],
                cwd=ROOT,
                stdout=log,
                stderr=log,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"node exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code in (200, 503):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"node on {self.url} did not come up in {timeout} s")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/health", timeout=5).json())


def fill(url: str, count: int, value_size: int = 100, prefix: str = "k") -> list[bytes]:
    """``count`` keys written through the node's API (each acknowledged), then flushed to files."""
    keys = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for index in range(count):
            key = f"{prefix}{index:06d}"
            client.put(f"/kv/{key}", content=os.urandom(value_size)).raise_for_status()
            keys.append(key.encode())
        client.post("/admin/flush").raise_for_status()
    return keys


def flip_byte(path: Path, offset: int) -> None:
    """Invert one byte of ``path`` in place (what a rotting sector does), and push it to the disk."""
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))
        handle.flush()
        os.fsync(handle.fileno())


class Flipped:
    def __init__(self, file: str, offset: int, block_offset: int, keys: list[bytes]) -> None:
        self.file, self.offset, self.block_offset, self.keys = file, offset, block_offset, keys


def flip_lsm_block(data_dir: Path, block: int = 1) -> Flipped:
    """Flip a byte inside data block ``block`` of the newest SSTable (not block 0: a node's key count
    scans from the first block and keeps it cached, where a flipped byte stays unseen until evicted)."""
    from engines.lsm.sstable_reader import open_table
    from engines.lsm.table_meta import table_number

    tables = sorted((Path(data_dir) / "sstables").glob("*.sst"))
    number = table_number(tables[-1].name)
    assert number is not None
    reader = open_table(data_dir, number)
    try:
        block = min(block, len(reader.offsets) - 1)
        keys = list(reader.raw_block(block)[0])
        start, size = reader.offsets[block], reader.sizes[block]
    finally:
        reader.close()
    offset = start + size // 2
    flip_byte(tables[-1], offset)
    return Flipped(f"sstables/{tables[-1].name}", offset, start, keys)
