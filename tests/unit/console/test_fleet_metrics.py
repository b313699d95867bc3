"""Reading /metrics: Prometheus text, histogram quantiles, rates between two scrapes."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from fleet.history import FleetHistory, linear_slope
from fleet.metrics import MetricsTracker, histogram_quantile, parse_metrics


def scrape(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def test_quantile_interpolates_like_prometheus() -> None:
    buckets = ((0.1, 50.0), (0.2, 100.0), (float("inf"), 100.0))
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.75, buckets) == pytest.approx(0.15)
    assert histogram_quantile(0.95, ((0.1, 0.0), (float("inf"), 10.0))) == 0.1  # highest finite bound
    assert histogram_quantile(0.95, ((0.1, 0.0), (float("inf"), 0.0))) is None
    assert histogram_quantile(0.95, ()) is None


def test_a_real_registry_is_read_and_rates_come_from_two_scrapes() -> None:
    registry = CollectorRegistry()
    writes = Histogram(
        "drconsole_write_latency_seconds", "w", registry=registry, buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5)
    )
    errors = Counter("drconsole_operation_errors", "e", registry=registry)
    Gauge("drconsole_disk_usage_ratio", "d", registry=registry).set(0.5)
    for _ in range(100):
        writes.observe(0.004)
    tracker = MetricsTracker()
    first = parse_metrics(scrape(registry))
    assert first.get("drconsole_disk_usage_ratio") == 0.5
    rates = tracker.update(first, at=100.0)
    assert rates.write_p95_ms == pytest.approx(4.75)  # all in the first bucket
    assert rates.error_rate_per_second is None  # needs two scrapes
    # Then 100 slow writes and 3 errors in 10 s: the p95 of *that interval* is slow.
    for _ in range(100):
        writes.observe(0.2)
    errors.inc(3)
    rates = tracker.update(parse_metrics(scrape(registry)), at=110.0)
    assert 100 < rates.write_p95_ms <= 250
    assert rates.error_rate_per_second == pytest.approx(0.3)
    assert rates.read_p95_ms is None


def test_a_restarted_node_does_not_give_negative_rates() -> None:
    tracker = MetricsTracker()
    tracker.update(parse_metrics("drconsole_operation_errors_total 50\n"), at=0.0)
    rates = tracker.update(parse_metrics("drconsole_operation_errors_total 2\n"), at=1.0)
    assert rates.error_rate_per_second is None


def test_text_that_is_not_prometheus_is_an_error() -> None:
    with pytest.raises(ValueError):
        parse_metrics("<html>not metrics</html>\n")


def test_history_series_and_time_to_full() -> None:
    from console_testkit import fixture_ticks

    history = FleetHistory(bucket_seconds=0)  # one point per snapshot (a recording, no refresh clock)
    for tick in fixture_ticks():
        history.add(tick)
    assert len(history.series("ledger", "disk_used")) == 10
    assert history.series("cache", "disk_used") == []  # unreachable: no figures
    # ledger grows 25 MiB/s with 9 GiB - 225 MiB free: about 360 s left.
    ttf = history.time_to_full("ledger")
    assert ttf is not None and 350 < ttf < 370
    assert history.time_to_full("orders-b") is None  # not growing
    assert linear_slope([(0, 1), (1, 3)]) == 2
    assert linear_slope([(1, 1), (1, 3)]) is None


def test_history_buckets_fold_ticks_and_leave_the_filling_one_out() -> None:
    from console_testkit import fixture_ticks

    ticks = fixture_ticks()  # ten ticks 1 s apart, 12:04:00 .. 12:04:09
    history = FleetHistory(span_seconds=6, bucket_seconds=2)  # three buckets kept per node
    for tick in ticks:
        history.add(tick)
    # buckets 12:04:04-05, 06-07 closed, 08-09 still filling; older ones fell out of the ring.
    points = history.points("ledger", "disk_used")
    assert len(points) == 2
    used = [node.disk.volume_used_bytes for tick in ticks for node in tick.nodes if node.name == "ledger"]
    assert points[0][1] == pytest.approx((used[4] + used[5]) / 2)
    assert points[0][0] == pytest.approx((ticks[4].taken_at.timestamp() + ticks[5].taken_at.timestamp()) / 2)
    assert points[1][1] == pytest.approx((used[6] + used[7]) / 2)
    with pytest.raises(KeyError):
        history.points("ledger", "no-such-metric")


def test_a_sources_own_ranges_replace_the_buckets_of_their_metrics_only() -> None:
    from console_testkit import fixture_ticks

    history = FleetHistory(span_seconds=6, bucket_seconds=2)  # three buckets kept per node
    for tick in fixture_ticks():
        history.add(tick)
    before = history.revision("ledger")
    own_disk = history.series("ledger", "disk_used")
    ranges = [(float(at), at / 100) for at in range(10)]
    history.load({"ledger": {"write_rate": ranges, "no_such_metric": ranges}, "stranger": {"lag_seconds": ranges}})
    assert history.revision("ledger") == before + 1  # a reader rebuilds its trends
    assert history.series("ledger", "write_rate") == [value for _at, value in ranges[-3:]]  # the newest, kept size
    assert history.series("ledger", "disk_used") == own_disk  # not in the ranges: still the ring's
    assert len(history.series("stranger", "lag_seconds")) == 3  # a node only the source knows
    history.load({"ledger": {"write_rate": ranges}})
    assert history.revision("ledger") == before + 1  # the same ranges again: nothing to redraw
