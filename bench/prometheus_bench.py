"""The fleet snapshot of 200 nodes from a real Prometheus in one tick, against polling the 200 nodes.

A loopback fleet (a subprocess: ``--serve-fleet``) listens on ``--nodes`` ports, one per synthetic
node; each port answers what ``drconsole node serve`` answers to the console: ``/metrics`` (the
node's own ``NodeMetrics`` registry, with write/read latencies observed on every scrape so that
``rate()`` and the p95 have something to work on), ``/health``, ``/replication`` and ``/peers``.
A real Prometheus (Debian's, started by tests/promstack.py) scrapes the 200 targets every 5 s.

Measured in the same run, on the same fleet:
  ours   PrometheusSource.collect(): one batch (targets + 2 instant queries) per tick
  peer   MixedSource.collect() with prefer="http": the direct polling the console does without
         Prometheus (/health, /replication, /metrics, /peers of every node, concurrently)

Printed: tick time (median, p95) over ``--ticks`` ticks, HTTP requests per tick (counted by the
clients' request hooks), nodes OK in the snapshot, and the goal (issue 10: under 200 ms, one
query batch per tick).

Usage: python bench/prometheus_bench.py [--nodes 200] [--ticks 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # promstack: the Prometheus the tests use

import httpx  # noqa: E402
import promstack  # noqa: E402
from prometheus_client import generate_latest  # noqa: E402

from engines.node.metrics import NodeMetrics  # noqa: E402
from fleet import FleetSnapshot, Health, MixedSource, NodeSpec, PrometheusSource  # noqa: E402

GOAL_MS = 200.0
# Prometheus' default is 15 s; 5 s keeps the synthetic fleet (one Python process answering 40
# scrapes a second) from eating the core the measured tick needs, and still gives rate() 12 points.
SCRAPE = "5s"


# ------------------------------------------------------------------------------ the synthetic fleet
class FakeNode:
    """One synthetic node: its metrics registry and its JSON answers."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.metrics = NodeMetrics()
        role = "primary" if index % 2 == 0 else "standby"
        self.metrics.disk_usage.set(0.30 + (index % 50) / 100)
        self.metrics.memory_usage.set(0.40)
        self.metrics.last_lsn.set(1000 + index)
        self.metrics.keys.set(500 + index)
        self.metrics.epoch.set(1)
        self.metrics.role.labels(role).set(1)
        self.health = json.dumps(
            {
                "name": f"node-{index:03d}",
                "role": role,
                "epoch": 1,
                "last_lsn": 1000 + index,
                "status": "healthy",
                "backend": "lsm",
                "stats": {"total_keys": 500 + index, "last_lsn": 1000 + index},
            }
        ).encode()
        self.replication = json.dumps(
            {
                "role": role,
                "epoch": 1,
                "upstream": None,
                "applied_lsn": 1000 + index,
                "primary_lsn": 1000 + index,
                "lag_records": 0,
                "lag_bytes": 0,
                "lag_seconds": 0.0,
                "split_brain": False,
            }
        ).encode()
        self.scrapes = 0

    def answer(self, path: str) -> tuple[bytes, str]:
        if path.startswith("/metrics"):
            self.scrapes += 1
            for step in range(5):  # traffic since the last scrape: rate() and the p95 see it move
                self.metrics.write_latency.observe(0.002 * (1 + (self.scrapes + step) % 7))
                self.metrics.read_latency.observe(0.0005 * (1 + (self.scrapes + step) % 5))
            return generate_latest(self.metrics.registry), "text/plain; version=0.0.4"
        if path.startswith("/health"):
            return self.health, "application/json"
        if path.startswith("/replication"):
            return self.replication, "application/json"
        return b'{"peers": []}', "application/json"


async def _serve_connection(node: FakeNode, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            body, kind = node.answer(path)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: "
                + kind.encode()
                + b"\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, IndexError):
        pass
    finally:
        writer.close()


async def serve_fleet(count: int, port_file: Path) -> None:
    servers, ports = [], []
    for index in range(count):
        server = await asyncio.start_server(partial(_serve_connection, FakeNode(index)), "127.0.0.1", 0)
        servers.append(server)
        ports.append(server.sockets[0].getsockname()[1])
    port_file.write_text(json.dumps(ports))
    await asyncio.Event().wait()  # until the bench terminates this process


# ------------------------------------------------------------------------------ measuring
class RequestLog:
    """Counts the clients' requests and keeps the longest wait for an answer (headers) since ``reset``."""

    def __init__(self, clients: list[httpx.AsyncClient]) -> None:
        self.count = 0
        self.longest_ms = 0.0
        self._sent: dict[int, float] = {}
        for client in clients:
            client.event_hooks["request"].append(self._request)
            client.event_hooks["response"].append(self._response)

    async def _request(self, request: httpx.Request) -> None:
        self.count += 1
        self._sent[id(request)] = time.perf_counter()

    async def _response(self, response: httpx.Response) -> None:
        sent = self._sent.pop(id(response.request), None)
        if sent is not None:
            self.longest_ms = max(self.longest_ms, (time.perf_counter() - sent) * 1000)


async def measure(
    source: Any, clients: httpx.AsyncClient | list[httpx.AsyncClient], ticks: int, warmup: int
) -> dict[str, Any]:
    log = RequestLog(clients if isinstance(clients, list) else [clients])
    for _ in range(warmup):
        await source.collect()
    times, requests, waits = [], [], []
    snapshot: FleetSnapshot | None = None
    cpu = time.process_time()
    for _ in range(ticks):
        before, log.longest_ms = log.count, 0.0
        started = time.perf_counter()
        snapshot = await source.collect()
        times.append((time.perf_counter() - started) * 1000)
        requests.append(log.count - before)
        waits.append(log.longest_ms)
    cpu_ms = (time.process_time() - cpu) * 1000 / ticks
    await source.aclose()
    assert snapshot is not None
    times.sort()
    return {
        "median_ms": statistics.median(times),
        "cpu_ms": cpu_ms,
        "wait_ms": statistics.median(waits),
        "p95_ms": times[max(0, int(len(times) * 0.95) - 1)],
        "requests": statistics.median(requests),
        "nodes": len(snapshot.nodes),
        "ok": sum(1 for node in snapshot.nodes if node.health == Health.OK),
        "with_p95": sum(1 for node in snapshot.nodes if node.performance.write_p95_ms is not None),
        "notices": snapshot.notices,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--ticks", type=int, default=30)
    parser.add_argument("--serve-fleet", type=Path, help=argparse.SUPPRESS)  # the fleet subprocess
    args = parser.parse_args()
    if args.serve_fleet is not None:
        asyncio.run(serve_fleet(args.nodes, args.serve_fleet))
        return 0
    promstack.ensure_installed()
    with tempfile.TemporaryDirectory(prefix="drconsole-prom-bench-") as tmp:
        work = Path(tmp)
        port_file = work / "ports.json"
        fleet = subprocess.Popen(
            [sys.executable, __file__, "--nodes", str(args.nodes), "--serve-fleet", str(port_file)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        prometheus = None
        try:
            promstack.wait_for(port_file.exists, 60, "the synthetic fleet listening")
            ports = json.loads(port_file.read_text())
            urls = [f"http://127.0.0.1:{port}" for port in ports]
            prometheus = promstack.start_prometheus(
                work / "prom", targets=urls, scrape_interval=SCRAPE, evaluation_interval=SCRAPE
            )
            promql = "count(up == 1)"
            promstack.wait_for(
                lambda: (
                    (promstack.query(prometheus.url, promql) or [{"value": [0, "0"]}])[0]["value"][1] == str(args.nodes)
                ),
                60,
                f"Prometheus scraping {args.nodes} targets",
            )
            rate = "count(rate(drconsole_write_latency_seconds_count[1m]) > 0)"
            promstack.wait_for(
                lambda: (
                    (promstack.query(prometheus.url, rate) or [{"value": [0, "0"]}])[0]["value"][1] == str(args.nodes)
                ),
                60,
                "a rate for every node (two scrapes each)",
            )
            specs = [NodeSpec(name=f"node-{index:03d}", url=url) for index, url in enumerate(urls)]

            async def run() -> tuple[dict[str, Any], dict[str, Any]]:
                ours = PrometheusSource(specs, prometheus.url, timeout_seconds=5.0)
                ours_result = await measure(ours, ours.http, args.ticks, warmup=3)
                peer = MixedSource(specs, prefer="http", timeout_seconds=5.0)
                assert peer.clients
                peer_result = await measure(peer, peer.clients, max(5, args.ticks // 3), warmup=1)
                return ours_result, peer_result

            ours, peer = asyncio.run(run())
        finally:
            if prometheus is not None:
                prometheus.stop()
            fleet.terminate()
            fleet.wait(timeout=10)
    print(
        f"fleet snapshot of {args.nodes} nodes, one tick (Prometheus {prometheus.url if prometheus else '?'}, "
        f"scrape {SCRAPE})"
    )
    print(
        f"{'source':<34}{'median':>10}{'p95':>10}{'our CPU':>10}{'slowest answer':>16}{'requests/tick':>15}"
        f"{'nodes ok':>10}{'p95 known':>11}"
    )
    for label, result in (("ours: PrometheusSource (PromQL)", ours), ("peer: direct HTTP polling", peer)):
        print(
            f"{label:<34}{result['median_ms']:>8.1f}ms{result['p95_ms']:>8.1f}ms{result['cpu_ms']:>8.1f}ms"
            f"{result['wait_ms']:>14.1f}ms{result['requests']:>15.0f}{result['ok']:>6}/{result['nodes']:<3}"
            f"{result['with_p95']:>11}"
        )
    print(
        "(our CPU: the console process's CPU time per tick; slowest answer: the median over ticks of the "
        "longest wait for a response's headers)"
    )
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    verdict = "meets" if ours["median_ms"] < GOAL_MS else "misses"
    print(
        f"goal: under {GOAL_MS:.0f} ms, one query batch per tick -> median {ours['median_ms']:.1f} ms {verdict} it "
        f"(median/goal = {ours['median_ms'] / GOAL_MS:.2f}); {peer['median_ms'] / ours['median_ms']:.0f}x faster "
        f"than polling the nodes, with {ours['requests']:.0f} requests per tick instead of {peer['requests']:.0f}"
    )
    if ours["notices"]:
        print("notices:", *ours["notices"])
    return 0 if ours["median_ms"] < GOAL_MS and ours["requests"] <= 3 else 1


if __name__ == "__main__":
    sys.exit(main())
