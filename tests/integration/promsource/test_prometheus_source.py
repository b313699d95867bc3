"""PrometheusSource against a real Prometheus scraping real nodes; and when Prometheus fails.

The nodes stay up in this module (the node-down path is test_node_down.py).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import promstack
import pytest
from console_testkit import screen_text
from promsource_kit import Stack

from console.config import load_config
from console.tui.launch import build_app
from fleet import FleetSnapshot, Health, MixedSource, NodeSpec, PrometheusSource, fleet_source
from fleet.alertmanager import AlertingSource, AlertmanagerClient, SilenceRequest
from fleet.prometheus import ApiError


def collect(source: Any, ticks: int = 1) -> list[FleetSnapshot]:
    async def main() -> list[FleetSnapshot]:
        try:
            return [await source.collect() for _ in range(ticks)]
        finally:
            await source.aclose()

    return asyncio.run(main())


def test_a_nodes_metrics_reach_the_snapshot_through_promql_in_one_batch_per_tick(stack: Stack) -> None:
    # The stack is the package's: another module's test may have written to it first.
    keys = httpx.get(f"{stack.primary.url}/health", timeout=5).json()["stats"]["total_keys"] + 25
    for index in range(25):
        httpx.put(f"{stack.primary.url}/kv/batch-order:{index}", content=b"paid", timeout=5).raise_for_status()
    promstack.wait_for(
        lambda: promstack.query(
            stack.prometheus.url, f'drconsole_keys{{instance="{stack.primary.instance}"}} == {keys}'
        ),
        20,
        f"Prometheus seeing the {keys} keys",
    )
    source = PrometheusSource(stack.specs(), stack.prometheus.url, timeout_seconds=2.0)
    first, second = collect(source, ticks=2)
    assert source.api.requests == 6  # three requests per tick (targets, gauges, derived), for any node count
    assert first.source == "prometheus" and first.notices == ()
    a, b = first.node("orders-a"), first.node("orders-b")
    assert a is not None and b is not None
    assert (a.source, a.role, a.health, a.reachable, a.total_keys) == ("prometheus", "primary", Health.OK, True, keys)
    assert a.last_lsn is not None and a.last_lsn >= keys
    assert a.address == stack.primary.url
    assert a.disk.usage_ratio is not None and 0 < a.disk.usage_ratio < 1
    assert a.performance.errors_total == 0
    assert b.role == "standby" and b.replication.upstream == "orders-a"
    assert b.replication.lag_seconds is not None
    assert [node.name for node in second.nodes] == ["orders-a", "orders-b"]


def test_a_target_prometheus_scrapes_but_the_config_does_not_name_still_shows(stack: Stack) -> None:
    only_a = [spec for spec in stack.specs() if spec.name == "orders-a"]
    (snapshot,) = collect(PrometheusSource(only_a, stack.prometheus.url))
    names = {node.name: node for node in snapshot.nodes}
    assert set(names) == {"orders-a", stack.standby.instance}
    stranger = names[stack.standby.instance]
    assert (stranger.role, stranger.health, stranger.address) == ("standby", Health.OK, stack.standby.url)


def test_a_configured_node_prometheus_does_not_scrape_is_shown_as_unknown(stack: Stack) -> None:
    specs = [*stack.specs(), NodeSpec(name="orders-c", url="http://127.0.0.1:9")]
    (snapshot,) = collect(PrometheusSource(specs, stack.prometheus.url))
    ghost = snapshot.node("orders-c")
    assert ghost is not None and ghost.health == Health.UNKNOWN
    assert "Prometheus does not scrape http://127.0.0.1:9" in ghost.health_reason


def test_prometheus_down_falls_back_to_polling_the_nodes_and_says_so(stack: Stack) -> None:
    gone = f"http://127.0.0.1:{promstack.free_port()}"  # nothing listens there
    source = PrometheusSource(
        stack.specs(), gone, timeout_seconds=0.5, retry_seconds=60, fallback=MixedSource(stack.specs(), prefer="http")
    )
    first, second = collect(source, ticks=2)
    assert first.source == "http (Prometheus fallback)"
    (notice,) = first.notices
    assert notice.startswith("Prometheus unreachable since ") and "polling nodes directly" in notice
    assert "connection refused" in notice
    a = first.node("orders-a")
    assert a is not None and (a.source, a.health, a.total_keys is not None) == ("http", Health.OK, True)
    # Not retried on every tick: the second tick went straight to the nodes, with the same notice.
    assert source.api.requests == 3 and second.notices == first.notices


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("html", "the answer is not JSON"),
        ("error-json", "HTTP 500 (storage is read-only)"),
        ("wrong-json", "not a Prometheus API answer"),
        ("hang", "no answer within 0.5 s"),
    ],
)
def test_prometheus_answering_garbage_or_nothing_degrades_without_a_crash(
    stack: Stack, junk: Any, mode: str, said: str
) -> None:
    server = junk(mode)
    source = PrometheusSource(
        stack.specs(), server.url, timeout_seconds=0.5, fallback=MixedSource(stack.specs(), prefer="http")
    )
    started = time.monotonic()
    (snapshot,) = collect(source)
    assert time.monotonic() - started < 3.0  # a hanging Prometheus costs its timeout, then the nodes answer
    (notice,) = snapshot.notices
    assert notice.startswith("Prometheus unreachable since ") and said in notice
    assert {node.name for node in snapshot.nodes if node.reachable} == {"orders-a", "orders-b"}


def test_an_alertmanager_that_answers_garbage_leaves_the_consoles_own_alerts_and_a_notice(
    stack: Stack, junk: Any
) -> None:
    server = junk("wrong-json")
    source = fleet_source(stack.specs(), prometheus_url=stack.prometheus.url, alertmanager_url=server.url)
    assert isinstance(source, AlertingSource)
    (snapshot,) = collect(source)
    assert snapshot.source == "prometheus"
    assert [notice.split(" — ")[0][:29] for notice in snapshot.notices] == ["Alertmanager unreachable sinc"]
    assert "expected a list of alerts" in snapshot.notices[0]


def test_a_silence_alertmanager_refuses_is_a_clear_error(junk: Any) -> None:
    server = junk("error-json")

    async def main() -> str:
        client = AlertmanagerClient(server.url, timeout_seconds=1.0)
        try:
            return await client.silence(SilenceRequest((("alertname", "DrconsoleNodeDown"),), 3600, "ops", "on it"))
        finally:
            await client.aclose()

    with pytest.raises(ApiError, match=r"Alertmanager /api/v2/silences: HTTP 500 \(storage is read-only\)"):
        asyncio.run(main())


@pytest.mark.parametrize("mode", ["interactive", "dashboard"])
def test_the_console_shows_the_fallback_notice_and_the_nodes_polled_directly(
    stack: Stack, tmp_path: Path, mode: str
) -> None:
    gone = f"http://127.0.0.1:{promstack.free_port()}"
    config = load_config(stack.config(tmp_path / "drconsole.toml", prometheus_url=gone))
    app = build_app(mode=mode, theme=None, read_only=False, config=config, watch_terminal=False)

    async def main() -> str:
        async with app.run_test(size=(150, 45)) as pilot:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                await pilot.pause(0.1)
                text = " ".join(screen_text(app).split())
                if "Prometheus unreachable since" in text and app.snapshot and app.snapshot.node("orders-a"):
                    return text
            raise AssertionError(screen_text(app))

    text = asyncio.run(main())
    assert "DEGRADED Prometheus unreachable since" in text and "polling nodes directly" in text
    assert app.snapshot is not None and app.snapshot.source == "http (Prometheus fallback)"
    assert {node.name for node in app.snapshot.nodes if node.reachable} == {"orders-a", "orders-b"}


def test_prometheus_is_tried_again_after_retry_seconds_and_the_notice_goes_when_it_answers(stack: Stack) -> None:
    times = iter([0.0, 5.0, 11.0, 12.0])
    start = datetime(2026, 11, 23, 12, 3, 41, tzinfo=UTC)
    source = PrometheusSource(
        stack.specs(),
        f"http://127.0.0.1:{promstack.free_port()}",
        retry_seconds=10,
        timeout_seconds=0.5,
        clock=lambda: start + timedelta(seconds=next(times)),
        fallback=MixedSource(stack.specs(), prefer="http"),
    )

    async def main() -> list[FleetSnapshot]:
        try:
            down = await source.collect()  # 12:03:41 refused: fallback
            source.api.url = stack.prometheus.url  # Prometheus is back (at another address, same thing)
            still = await source.collect()  # 5 s later: not retried yet
            back = await source.collect()  # 11 s later: retried, answers
            return [down, still, back, await source.collect()]
        finally:
            await source.aclose()

    down, still, back, after = asyncio.run(main())
    assert down.notices[0].startswith("Prometheus unreachable since 12:03:41 UTC")
    assert still.notices == down.notices and still.source.endswith("(Prometheus fallback)")
    assert (back.source, back.notices, after.source) == ("prometheus", (), "prometheus")
