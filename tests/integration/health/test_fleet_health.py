"""The fleet sources map a node's health states: HttpSource polling real nodes, PrometheusSource reading a
real Prometheus that scrapes them. A node that refuses health checks because it is recovering is not down."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import promstack
from integration.health.health_support import ROOT, ServedNode, fill, flip_lsm_block

from fleet import FleetSnapshot, Health, HttpSource, NodeSpec, PrometheusSource


def collect(source: Any) -> FleetSnapshot:
    async def main() -> FleetSnapshot:
        try:
            return await source.collect()
        finally:
            await source.aclose()

    return asyncio.run(main())


def test_http_source_shows_corrupt_with_the_file_and_offset(served: Callable[..., ServedNode]) -> None:
    node = served("orders", "--scrub-interval", "0")
    fill(node.url, 500)
    flipped = flip_lsm_block(node.data_dir)
    assert httpx.get(f"{node.url}/kv/{flipped.keys[0].decode()}").status_code == 500
    snapshot = collect(HttpSource([NodeSpec(name="orders", url=node.url)], timeout_seconds=2.0))
    found = snapshot.node("orders")
    assert found is not None and found.reachable and found.health == Health.CORRUPT
    assert found.corruption is not None
    assert (found.corruption.file, found.corruption.offset, found.corruption.found_by) == (
        flipped.file,
        flipped.block_offset,
        "read",
    )
    assert found.corruption.since is not None and found.corruption.since.tzinfo is not None
    assert [(alert.rule, alert.severity.value) for alert in found.alerts if alert.rule == "corruption"] == [
        ("corruption", "critical")
    ]
    assert flipped.file in next(alert.message for alert in found.alerts if alert.rule == "corruption")


def test_http_source_shows_recovering_and_fenced_as_reachable_states(threaded: Callable[..., Any]) -> None:
    recovering, fenced = threaded("ledger"), threaded("cache")
    recovering.node.set_recovering("data-recovery run 7")
    fenced.node.fence("epoch 3 exists elsewhere")
    specs = [NodeSpec(name="ledger", url=recovering.url), NodeSpec(name="cache", url=fenced.url)]
    snapshot = collect(HttpSource(specs, timeout_seconds=2.0))
    ledger, cache = snapshot.node("ledger"), snapshot.node("cache")
    assert ledger is not None and cache is not None
    assert (ledger.health, ledger.reachable) == (Health.RECOVERING, True)
    assert "data-recovery run 7" in ledger.health_reason
    assert not any(alert.rule == "node-down" for alert in ledger.alerts)
    assert (cache.health, cache.reachable) == (Health.FENCED, True)


def test_corruption_stays_an_alert_while_a_recovery_drains_the_node(threaded: Callable[..., Any]) -> None:
    """The drain that starts a recovery must not clear the corruption alert: the damage is there until
    the run's verify is clean (a console showed "cleared" three seconds before the repair ran)."""
    server = threaded("orders")
    fill(server.url, 300)
    flipped = flip_lsm_block(server.node.config.data_dir)
    assert httpx.get(f"{server.url}/kv/{flipped.keys[0].decode()}", timeout=5).status_code == 500
    server.node.set_recovering("data-recovery run 7")
    try:
        snapshot = collect(HttpSource([NodeSpec(name="orders", url=server.url)], timeout_seconds=2.0))
        found = snapshot.node("orders")
        assert found is not None and found.health == Health.RECOVERING
        assert found.corruption is not None and found.corruption.file == flipped.file
        assert [alert.rule for alert in found.alerts if alert.rule == "corruption"] == ["corruption"]
        # A recovery with nothing damaged raises no corruption alert.
        server.node.clear_corruption("verified clean")
        again = collect(HttpSource([NodeSpec(name="orders", url=server.url)], timeout_seconds=2.0)).node("orders")
        assert again is not None and again.health == Health.RECOVERING and again.corruption is None
        assert not [alert for alert in again.alerts if alert.rule == "corruption"]
    finally:
        server.node.clear_recovering()


def test_prometheus_source_reads_the_corruption_gauge(served: Callable[..., ServedNode], tmp_path: Path) -> None:
    node = served("events", "--scrub-interval", "0")
    fill(node.url, 500)
    instance = node.url.removeprefix("http://")
    prometheus = promstack.start_prometheus(
        tmp_path / "prometheus",
        targets=[instance],
        rule_files=[ROOT / "deploy" / "prometheus" / "drconsole-alerts.yml"],
    )
    try:
        spec = [NodeSpec(name="events", url=node.url)]
        promstack.wait_for(
            lambda: promstack.query(prometheus.url, "drconsole_corruption_detected == 0"), 30, "a first scrape"
        )
        assert collect(PrometheusSource(spec, prometheus.url)).node("events").health == Health.OK  # type: ignore[union-attr]
        flipped = flip_lsm_block(node.data_dir)
        assert httpx.get(f"{node.url}/kv/{flipped.keys[0].decode()}").status_code == 500
        promstack.wait_for(
            lambda: promstack.query(prometheus.url, "drconsole_corruption_detected == 1"),
            30,
            "Prometheus seeing the corruption",
        )
        found = collect(PrometheusSource(spec, prometheus.url)).node("events")
        assert found is not None and found.health == Health.CORRUPT and found.corruption is not None
        assert "/health" in found.corruption.detail
        firing = promstack.wait_for(
            lambda: [
                alert
                for alert in promstack.prometheus_alerts(prometheus.url)
                if alert["labels"]["alertname"] == "DrconsoleCorruptionDetected" and alert["state"] == "firing"
            ],
            30,
            "the corruption alert firing",
        )
        assert firing[0]["labels"]["severity"] == "critical" and firing[0]["labels"]["rule"] == "corruption"
    finally:
        prometheus.stop()
