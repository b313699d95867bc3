"""HttpSource against real ``drconsole node serve`` processes: a primary and its standby.

The processes are started on free loopback ports and stopped at the end; killing the primary shows
it unreachable with the time it went away.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from drills.node import free_port
from fleet import Health, HttpSource, NodeSpec

ROOT = Path(__file__).resolve().parents[3]


def serve(data_dir: Path, port: int, name: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "console",
            "node",
            "serve",
            "--engine",
            "lsm",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--name",
            name,
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_healthy(url: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=0.5).status_code in (200, 503):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered /health")


def test_a_primary_and_its_standby_then_the_primary_dies(tmp_path: Path) -> None:
    primary_url, standby_url = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    primary = serve(tmp_path / "p", int(primary_url.rsplit(":", 1)[1]), "orders-a")
    standby = serve(tmp_path / "s", int(standby_url.rsplit(":", 1)[1]), "orders-b", "--follow", primary_url)
    try:
        wait_healthy(primary_url)
        wait_healthy(standby_url)
        for index in range(20):
            httpx.put(f"{primary_url}/kv/k{index}", content=b"v", timeout=5).raise_for_status()
        specs = [
            NodeSpec(name="orders-a", url=primary_url, data_dir=tmp_path / "p"),
            NodeSpec(name="orders-b", url=standby_url, role="standby", upstream="orders-a"),
        ]

        async def main():
            source = HttpSource(specs, timeout_seconds=0.5)
            try:
                first = await source.collect()
                primary.send_signal(signal.SIGKILL)
                primary.wait(timeout=10)
                second = await source.collect()
                return first, second
            finally:
                await source.aclose()

        first, second = asyncio.run(main())
        a, b = first.nodes
        assert (a.engine, a.role, a.health, a.total_keys) == ("lsm", "primary", Health.OK, 20)
        assert a.health_reason.startswith("healthy")
        assert a.memory.node_rss_bytes is not None  # found by its --data-dir on this box
        assert (b.role, b.replication.upstream) == ("standby", primary_url)
        assert b.replication.lag_records is not None
        dead = second.node("orders-a")
        assert dead is not None and not dead.reachable and dead.unreachable_since is not None
        assert second.node("orders-b") is not None and second.node("orders-b").reachable
    finally:
        for process in (primary, standby):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
