"""Trends from Prometheus' own history (``query_range``) when Prometheus is the fleet source: a real
Prometheus scraping real nodes under writes; the ranges agree with its instant answers, later reads
are incremental, and a console that has just opened shows minutes of trend it never polled itself."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import promstack
from promsource_kit import Stack

from console.config import load_config
from console.tui.launch import build_app
from console.tui.trends import TrendReader
from fleet import PrometheusSource

SPAN, STEP = 120.0, 1.0


def write_for(stack: Stack, seconds: float) -> None:
    """Writes to the primary for ``seconds`` (a write rate for Prometheus to see), then until it has."""
    deadline = time.monotonic() + seconds
    index = 0
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            client.put(f"{stack.primary.url}/kv/trend:{index}", content=b"x" * 64).raise_for_status()
            index += 1
            time.sleep(0.02)
    promstack.wait_for(
        lambda: promstack.query(
            stack.prometheus.url,
            f'sum(rate(drconsole_write_latency_seconds_count{{instance="{stack.primary.instance}"}}[1m])) > 0',
        ),
        20,
        "Prometheus seeing the writes",
    )


def test_the_trends_are_prometheus_ranges_agreeing_with_its_instant_answers(stack: Stack) -> None:
    write_for(stack, 6)
    source = PrometheusSource(stack.specs(), stack.prometheus.url, timeout_seconds=3.0)

    async def main() -> tuple[dict, dict, int]:  # type: ignore[type-arg]
        try:
            first = await source.trend_ranges(SPAN, STEP)
            requests = source.api.requests
            await asyncio.sleep(2.5)
            second = await source.trend_ranges(SPAN, STEP)
            return first or {}, second or {}, source.api.requests - requests
        finally:
            await source.aclose()

    first, second, more = asyncio.run(main())
    assert set(first) == {"orders-a", "orders-b"}, first.keys()
    a, b = first["orders-a"], first["orders-b"]
    for metric in ("disk_ratio", "memory_ratio", "write_rate", "write_p95"):
        assert len(a.get(metric, ())) >= 5, (metric, a.get(metric))
    assert max(value for _at, value in a["write_rate"]) > 1  # the writes above, per second
    assert all(0 < value < 1 for _at, value in a["disk_ratio"])
    assert "lag_seconds" in b
    # The newest disk point is what Prometheus answers for the gauge at that instant.
    at, ratio = a["disk_ratio"][-1]
    (instant,) = httpx.get(
        f"{stack.prometheus.url}/api/v1/query",
        params={"query": f'drconsole_disk_usage_ratio{{instance="{stack.primary.instance}"}}', "time": f"{at:.3f}"},
        timeout=5,
    ).json()["data"]["result"]
    assert abs(float(instant["value"][1]) - ratio) < 1e-9
    # Points a step apart on one grid; the second read asked two queries for what was new and kept the rest.
    times = [at for at, _value in a["disk_ratio"]]
    assert all(abs((later - earlier) % STEP) < 1e-6 for earlier, later in zip(times, times[1:], strict=False))
    assert more == 2
    kept = dict(second["orders-a"]["disk_ratio"])
    assert set(times) <= set(kept) and max(kept) > max(times)


def test_a_console_that_just_opened_shows_minutes_of_trend_from_prometheus(stack: Stack, tmp_path: Path) -> None:
    write_for(stack, 3)
    config = load_config(stack.config(tmp_path / "drconsole.toml", refresh_seconds=0.5))
    app = build_app(mode="interactive", theme=None, read_only=False, config=config, watch_terminal=False)

    async def main() -> tuple[float, list[tuple[float, float]], int]:
        opened = time.time()
        async with app.run_test(size=(150, 45)) as pilot:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len(app.history.points("orders-a", "write_rate")) < 4:
                await pilot.pause(0.1)
            trends = TrendReader(app.history).of("orders-a")
            assert len(trends.of("disk_ratio")) >= 4 and len(trends.of("memory_ratio")) >= 4
            return opened, app.history.points("orders-a", "write_rate"), app.history._ticks

    opened, points, ticks = asyncio.run(main())
    # Points from before the console opened: Prometheus' history, not the console's own ring buffer
    # (which, from its few ticks, could hold at most one point per closed 2.5 s bucket).
    assert len(points) >= 4 and points[0][0] < opened - 5, (opened, points)
    assert ticks < 10 and len(points) > ticks * 0.5 / 2.5 + 1, (ticks, points)
    assert max(value for _at, value in points) > 1  # the writes, per second
