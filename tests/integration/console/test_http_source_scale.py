"""Direct polling of a fleet of 200 nodes finishes inside one tick's deadline, every node answering.

One shared httpx pool made every queued request scan every connection: 200 nodes took ~10 s of
CPU per tick and none answered in time (bench/prometheus_bench.py). Each node now has its own
client. The fleet is bench/prometheus_bench.py's synthetic one: real sockets on loopback, one port
per node, answering what `drconsole node serve` answers to the console.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet import HttpSource
from fleet.nodes import NodeSpec
from fleet.snapshot import Health

ROOT = Path(__file__).resolve().parents[3]
NODES = 200


@pytest.fixture
def fleet_ports(tmp_path: Path) -> Iterator[list[int]]:
    port_file = tmp_path / "ports.json"
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "prometheus_bench.py"),
            "--nodes",
            str(NODES),
            "--serve-fleet",
            str(port_file),
        ]
    )
    try:
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text()):
            assert time.monotonic() < deadline and process.poll() is None, "the synthetic fleet did not start"
            time.sleep(0.05)
        yield json.loads(port_file.read_text())
    finally:
        process.terminate()
        process.wait(10)


def test_two_hundred_nodes_are_all_read_within_the_tick_deadline(fleet_ports: list[int]) -> None:
    specs = [
        NodeSpec(name=f"node-{index:03d}", url=f"http://127.0.0.1:{port}") for index, port in enumerate(fleet_ports)
    ]

    async def ticks() -> list[tuple[float, int]]:
        source = HttpSource(specs, timeout_seconds=3.0)  # the tick's deadline: 4.5 s
        try:
            measured = []
            for _ in range(2):
                started = time.perf_counter()
                snapshot = await source.collect()
                measured.append(
                    (
                        time.perf_counter() - started,
                        sum(1 for node in snapshot.nodes if node.reachable and node.health == Health.OK),
                    )
                )
            return measured
        finally:
            await source.aclose()

    measured = asyncio.run(ticks())
    assert all(ok == NODES for _seconds, ok in measured), measured
    assert min(seconds for seconds, _ok in measured) < 4.5, measured
