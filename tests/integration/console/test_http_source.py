"""HttpSource against a real HTTP server on 127.0.0.1 answering the node API's documented shapes."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from node_server import FakeNode, NodeServer, dead_url

from fleet import Health, HttpSource, NodeSpec, Thresholds


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 5, 14, 12, 3, 31, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def server():
    with NodeServer() as running:
        yield running


def test_a_healthy_node_is_read_in_full(server: NodeServer) -> None:
    node = server.add(
        FakeNode(
            "orders-b",
            role="standby",
            epoch=3,
            peers=["orders-a"],
            replication={
                "upstream": "http://orders-a",
                "lag_records": 1200,
                "lag_bytes": 216000,
                "lag_seconds": 4.5,
                "primary_lsn": 2200,
            },
        )
    )
    node.rss.set(300 * 2**20)
    node.disk_ratio.set(0.4)

    async def main():
        source = HttpSource([NodeSpec(name="orders-b", url=server.url("orders-b"), role="standby")])
        try:
            return await source.collect()
        finally:
            await source.aclose()

    [read] = asyncio.run(main()).nodes
    assert (read.name, read.engine, read.role, read.epoch, read.health, read.reachable) == (
        "orders-b",
        "lsm",
        "standby",
        3,
        Health.OK,
        True,
    )
    assert (read.last_lsn, read.total_keys, read.source) == (1000, 4200, "http")
    assert read.disk.usage_ratio == 0.4 and read.disk.volume_path == "/data"
    assert read.disk.components.wal_bytes == 2**20 and read.disk.components.store_bytes == 8 * 2**20
    assert read.memory.node_rss_bytes == 300 * 2**20 and read.memory.usage_ratio == 0.25
    assert (read.replication.lag_records, read.replication.lag_bytes, read.replication.lag_seconds) == (
        1200,
        216000,
        4.5,
    )
    assert read.peers == ("orders-a",)


def test_a_dead_node_shows_since_when_and_a_slow_one_never_stalls_the_tick(server: NodeServer) -> None:
    server.add(FakeNode("fast"))
    server.add(FakeNode("slow", delay_seconds=2))
    clock = Clock()
    specs = [
        NodeSpec(name="fast", url=server.url("fast")),
        NodeSpec(name="slow", url=server.url("slow")),
        NodeSpec(name="dead", url=dead_url(), engine="rocksdb"),
    ]

    async def main():
        source = HttpSource(specs, clock=clock, timeout_seconds=0.4)
        try:
            started = time.monotonic()
            first = await source.collect()
            took = time.monotonic() - started
            clock.advance(31)
            second = await source.collect()
            return first, took, second
        finally:
            await source.aclose()

    first, took, second = asyncio.run(main())
    assert took < 1.5, f"a slow node stalled the tick for {took:.1f} s"
    fast, slow, dead = first.nodes
    assert fast.reachable and fast.health == Health.OK
    assert not slow.reachable
    assert "timed out" in slow.health_reason or "no answer" in slow.health_reason
    assert not dead.reachable and dead.health == Health.DOWN and dead.engine == "rocksdb"
    assert dead.health_reason == f"GET {specs[2].url}/health: connection refused"  # nothing listens: gone, not hung
    assert dead.unreachable_since == datetime(2024, 5, 14, 12, 3, 31, tzinfo=UTC)
    assert dead.alerts == ()  # not yet 30 s
    dead_later = second.node("dead")
    assert dead_later is not None and dead_later.unreachable_since == dead.unreachable_since
    assert [alert.rule for alert in dead_later.alerts] == ["node-down"]


def test_a_503_is_reachable_but_down_with_its_reason(server: NodeServer) -> None:
    server.add(FakeNode("sick", status_code=503, reason="store failed to open: checksum mismatch"))

    async def main():
        source = HttpSource([NodeSpec(name="sick", url=server.url("sick"))])
        try:
            return await source.collect()
        finally:
            await source.aclose()

    [sick] = asyncio.run(main()).nodes
    assert sick.reachable and sick.health == Health.DOWN
    assert sick.health_reason == "store failed to open: checksum mismatch"


def test_latency_error_rate_and_split_brain_reach_the_alerts(server: NodeServer) -> None:
    node = server.add(FakeNode("a", epoch=4, replication={"split_brain": True}))
    for _ in range(50):
        node.writes.observe(0.0005)
    clock = Clock()

    async def main():
        source = HttpSource([NodeSpec(name="a", url=server.url("a"))], clock=clock, thresholds=Thresholds())
        try:
            first = await source.collect()
            for _ in range(50):
                node.writes.observe(0.3)
            node.errors.inc(5)
            await asyncio.sleep(0.2)
            clock.advance(1)
            second = await source.collect()
            return first, second
        finally:
            await source.aclose()

    first, second = asyncio.run(main())
    [a1], [a2] = first.nodes, second.nodes
    assert a1.performance.write_p95_ms is not None and a1.performance.write_p95_ms < 1
    assert a2.performance.write_p95_ms is not None and a2.performance.write_p95_ms > 250
    assert a2.performance.error_rate_per_second is not None and a2.performance.error_rate_per_second > 1
    assert {alert.rule for alert in a2.alerts} == {"split-brain", "write-p95", "error-rate"}
    assert a2.replication.split_brain and a2.health == Health.DEGRADED


def test_a_node_that_comes_back_is_reachable_again(server: NodeServer) -> None:
    node = server.add(FakeNode("flaky", delay_seconds=1))

    async def main():
        source = HttpSource([NodeSpec(name="flaky", url=server.url("flaky"))], timeout_seconds=0.3)
        try:
            first = await source.collect()
            node.delay_seconds = 0
            second = await source.collect()
            return first, second
        finally:
            await source.aclose()

    first, second = asyncio.run(main())
    assert not first.nodes[0].reachable and first.nodes[0].unreachable_since is not None
    assert second.nodes[0].reachable and second.nodes[0].unreachable_since is None
