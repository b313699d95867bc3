"""``PrometheusSource``: the fleet snapshot built from PromQL instead of polling every node.

One tick is one batch of three concurrent requests, whatever the number of nodes:

    GET /api/v1/targets?state=active     which nodes Prometheus scrapes, and whether the last scrape worked
    GET /api/v1/query  GAUGES            every drconsole gauge of every node, and its role (one instant vector)
    GET /api/v1/query  DERIVED           p95 write/read latency, writes/reads per second, error rate, errors total

Series are grouped by ``instance``; a target is mapped to a configured ``[[node]]`` by its ``node``
label (``labels: {node: orders-a}`` in prometheus.yml) or by its address (``instance`` equal to
the host:port of the node's ``url``). Targets Prometheus scrapes that are not configured still
show, named by their ``node`` label or instance.

When Prometheus is unreachable, times out or answers something that is not its API, the tick is
read by the ``fallback`` source (direct polling of the nodes) and the snapshot carries the
notice "Prometheus unreachable since 12:03:41 UTC — polling nodes directly"; Prometheus is tried
again every ``retry_seconds``. ``collect`` never raises for any of that.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from fleet.alerts import Thresholds
from fleet.nodes import NodeSpec
from fleet.prometheus_trends import PrometheusTrends, RangeSeries, TrendRanges, matrix
from fleet.snapshot import (
    BackupState,
    Corruption,
    DiskUsage,
    FleetSnapshot,
    Health,
    MemoryUsage,
    NodeSnapshot,
    Performance,
    Replication,
    utc_now,
)
from fleet.source import Clock, FleetSource, Reachability, finalize

__all__ = [
    "ApiError",
    "DERIVED",
    "GAUGES",
    "derived_query",
    "PrometheusClient",
    "PrometheusSource",
    "api_json",
    "netloc",
]

GAUGE_NAMES = (
    "disk_usage_ratio",
    "memory_usage_ratio",
    "replication_lag_seconds",
    "replication_lag_bytes",
    "replication_lag_records",
    "last_lsn",
    "epoch",
    "keys",
    "split_brain",
    "fenced",
    "corruption_detected",
    "recovering",
)
# drconsole_role has one series per role, 1 for the node's own: only that one is fetched.
GAUGES = '{__name__=~"drconsole_(' + "|".join(GAUGE_NAMES) + ')"} or drconsole_role == 1'
FIGURE_LABEL = "drconsole_figure"


def derived_query(window: str) -> str:
    """p95 latencies and error figures of every instance in one expression, each sample labelled.

    One ``or`` of the parts rather than one query each: on two busy cores, three concurrent
    queries were no faster than one (bench/prometheus_bench.py) and cost the console more CPU.
    """

    def labelled(name: str, expr: str) -> str:
        return f'label_replace({expr}, "{FIGURE_LABEL}", "{name}", "", "")'

    return " or ".join(
        (
            labelled(
                "write_p95",
                "histogram_quantile(0.95, sum by (instance, le) "
                f"(rate(drconsole_write_latency_seconds_bucket[{window}])))",
            ),
            labelled(
                "read_p95",
                "histogram_quantile(0.95, sum by (instance, le) "
                f"(rate(drconsole_read_latency_seconds_bucket[{window}])))",
            ),
            labelled("error_rate", f"sum by (instance) (rate(drconsole_operation_errors_total[{window}]))"),
            labelled("write_rate", f"sum by (instance) (rate(drconsole_write_latency_seconds_count[{window}]))"),
            labelled("read_rate", f"sum by (instance) (rate(drconsole_read_latency_seconds_count[{window}]))"),
            labelled("errors_total", "sum by (instance) (drconsole_operation_errors_total)"),
        )
    )


DERIVED = derived_query("1m")


class ApiError(Exception):
    """Prometheus or Alertmanager did not give a usable answer; the message says what happened."""


def _describe(exc: BaseException, timeout: float | None) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {timeout:g} s" if timeout else "timed out"
    if isinstance(exc, httpx.ConnectError):
        cause: BaseException | None = exc
        while cause is not None:  # httpx says "All connection attempts failed"; the OS error says why
            if isinstance(cause, ConnectionRefusedError) or "refused" in str(cause).lower():
                return "connection refused"
            cause = cause.__cause__ or cause.__context__
        return f"cannot connect ({exc})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def api_json(client: httpx.AsyncClient, method: str, url: str, *, what: str, **kwargs: Any) -> Any:
    """The JSON body of ``method url``; ``ApiError`` for a transport error, an error status or non-JSON."""
    timeout = client.timeout.read
    try:
        response = await client.request(method, url, **kwargs)
    except (httpx.HTTPError, OSError) as exc:
        raise ApiError(f"{what}: {_describe(exc, timeout)}") from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        detail = body.get("error") if isinstance(body, dict) else None
        detail = detail or (response.text.strip()[:200] if response.text else "")
        raise ApiError(f"{what}: HTTP {response.status_code}" + (f" ({detail})" if detail else ""))
    if body is None:
        raise ApiError(f"{what}: the answer is not JSON ({response.text.strip()[:60]!r})")
    return body


def netloc(url: str) -> str:
    """``host:port`` of a URL (the form of a Prometheus ``instance`` label), lower case."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{(parts.hostname or '').lower()}:{port}"


Sample = tuple[dict[str, str], float]


class PrometheusClient:
    """The two API calls a tick needs, over one client; ``requests`` counts what was sent."""

    def __init__(self, url: str, client: httpx.AsyncClient) -> None:
        self.url = url.rstrip("/")
        self.client = client
        self.requests = 0

    async def _data(self, path: str, params: dict[str, str]) -> Any:
        self.requests += 1
        body = await api_json(self.client, "GET", f"{self.url}{path}", params=params, what=f"Prometheus {path}")
        if not isinstance(body, dict) or body.get("status") != "success" or not isinstance(body.get("data"), dict):
            error = body.get("error") if isinstance(body, dict) else None
            raise ApiError(f"Prometheus {path}: not a Prometheus API answer" + (f" ({error})" if error else ""))
        return body["data"]

    async def query(self, promql: str) -> list[Sample]:
        data = await self._data("/api/v1/query", {"query": promql})
        if data.get("resultType") != "vector" or not isinstance(data.get("result"), list):
            raise ApiError(f"Prometheus /api/v1/query: expected a vector, got {data.get('resultType')!r}")
        samples = []
        for item in data["result"]:
            try:
                labels, value = item["metric"], float(item["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                continue  # one malformed sample costs that figure, not the tick
            # JSON object keys are strings already; label values are checked where they are read.
            if isinstance(labels, dict) and not math.isnan(value):
                samples.append((labels, value))
        return samples

    async def query_range(self, promql: str, start: float, end: float, step: float) -> RangeSeries:
        """``/api/v1/query_range``: (labels, [(epoch s, value)]) per series (fleet.prometheus_trends)."""
        data = await self._data(
            "/api/v1/query_range", {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        )
        try:
            return matrix(data)
        except ValueError as exc:
            raise ApiError(f"Prometheus /api/v1/query_range: {exc}") from exc

    async def targets(self) -> list[dict[str, Any]]:
        data = await self._data("/api/v1/targets", {"state": "active"})
        targets = data.get("activeTargets")
        if not isinstance(targets, list):
            raise ApiError("Prometheus /api/v1/targets: no activeTargets list")
        return [target for target in targets if isinstance(target, dict) and isinstance(target.get("labels"), dict)]


@dataclass
class _Instance:
    """What one tick learnt about one scraped instance."""

    instance: str
    labels: dict[str, str] = field(default_factory=dict)
    target: dict[str, Any] | None = None
    gauges: dict[str, float] = field(default_factory=dict)
    role: str | None = None
    figures: dict[str, float] = field(default_factory=dict)


def _gather(targets: list[dict[str, Any]], gauges: list[Sample], derived: list[Sample]) -> dict[str, _Instance]:
    found: dict[str, _Instance] = {}

    def at(instance: str) -> _Instance:
        item = found.get(instance)
        if item is None:
            item = found[instance] = _Instance(instance)
        return item

    for target in targets:
        labels = target["labels"]
        instance = labels.get("instance")
        if isinstance(instance, str):
            item = at(instance)
            item.target, item.labels = target, labels
    for labels, value in gauges:
        instance = labels.get("instance")
        if not isinstance(instance, str):
            continue
        item = at(instance)
        name = str(labels.get("__name__", "")).removeprefix("drconsole_")
        if "role" in labels:  # drconsole_role == 1 (a comparison may drop the name: the label says it)
            if value == 1:
                item.role = str(labels["role"])
        elif name:
            item.gauges[name] = value
        if not item.labels:
            item.labels = {k: v for k, v in labels.items() if k not in ("__name__", "role")}
    for labels, value in derived:
        instance, figure = labels.get("instance"), labels.get(FIGURE_LABEL)
        if isinstance(instance, str) and isinstance(figure, str):
            at(instance).figures[figure] = value
    return found


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


class PrometheusSource:
    """A ``FleetSource`` reading Prometheus; see the module docstring."""

    def __init__(
        self,
        specs: Sequence[NodeSpec],
        url: str,
        *,
        thresholds: Thresholds | None = None,
        clock: Clock = utc_now,
        timeout_seconds: float = 2.0,
        rate_window: str = "1m",
        retry_seconds: float = 10.0,
        fallback: FleetSource | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.specs = list(specs)
        self.thresholds = thresholds or Thresholds()
        self.clock = clock
        self.timeout_seconds = timeout_seconds
        self.retry_seconds = retry_seconds
        self.fallback = fallback
        self.derived = derived_query(rate_window)
        self.http = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds), headers={"User-Agent": "drconsole"}
        )
        self.api = PrometheusClient(url, self.http)
        self.down_since: datetime | None = None
        self.last_error = ""
        self._retry_at: datetime | None = None
        self._reachability: dict[str, Reachability] = {}
        self._by_name = {spec.name: spec for spec in self.specs}
        self._by_address = {netloc(spec.url): spec for spec in self.specs if spec.url is not None}
        self._trends: PrometheusTrends | None = None

    # ------------------------------------------------------------------ FleetSource
    async def collect(self) -> FleetSnapshot:
        now = self.clock()
        if self.down_since is None or self._retry_at is None or now >= self._retry_at:
            try:
                snapshot = await asyncio.wait_for(self._from_prometheus(now), self.timeout_seconds * 1.5)
            except (ApiError, TimeoutError) as exc:
                self._failed(now, str(exc) or f"no answer within {self.timeout_seconds * 1.5:g} s")
            except (ValueError, TypeError, KeyError, AttributeError) as exc:  # the API's shape, but not its content
                self._failed(now, f"Prometheus answered something unexpected ({type(exc).__name__}: {exc})")
            else:
                self.down_since, self.last_error = None, ""
                return snapshot
        return await self._fall_back(now)

    async def aclose(self) -> None:
        await self.http.aclose()
        if self.fallback is not None:
            await self.fallback.aclose()

    async def trend_ranges(self, span_seconds: float, step_seconds: float) -> TrendRanges | None:
        """Every node's trends over the last ``span_seconds`` from Prometheus (``query_range``); None while
        Prometheus is down (the console's own ring buffer, filled by the fallback's ticks, shows then)."""
        if self.down_since is not None:
            return None
        trends = self._trends
        if trends is None or (trends.span_seconds, trends.step_seconds) != (span_seconds, step_seconds):
            trends = self._trends = PrometheusTrends(self, span_seconds=span_seconds, step_seconds=step_seconds)
        try:
            return await asyncio.wait_for(trends.read(), self.timeout_seconds * 1.5)
        except (ApiError, TimeoutError):
            return None  # the next tick says why, if Prometheus is really gone

    def node_name(self, labels: Mapping[str, str]) -> str | None:
        """The node a series of ``labels`` belongs to: its configured name, else its ``node`` label or instance."""
        instance = labels.get("instance")
        if not isinstance(instance, str):
            return None
        spec = self._spec_of(labels.get("node", ""), instance)
        return spec.name if spec is not None else str(labels.get("node") or instance)

    # ------------------------------------------------------------------ degraded
    @property
    def notice(self) -> str:
        if self.down_since is None:
            return ""
        since = self.down_since.strftime("%H:%M:%S %Z").strip()
        how = "polling nodes directly" if self.fallback is not None else "no other source configured"
        return f"Prometheus unreachable since {since} — {how} ({self.last_error})"

    def _failed(self, now: datetime, error: str) -> None:
        if self.down_since is None:
            self.down_since = now
        self.last_error = error
        self._retry_at = now + timedelta(seconds=self.retry_seconds)

    async def _fall_back(self, now: datetime) -> FleetSnapshot:
        if self.fallback is None:
            return FleetSnapshot(taken_at=now, source="prometheus (unreachable)", notices=(self.notice,))
        snapshot = await self.fallback.collect()
        return snapshot.model_copy(
            update={"source": f"{snapshot.source} (Prometheus fallback)", "notices": (self.notice, *snapshot.notices)}
        )

    # ------------------------------------------------------------------ the batch
    async def _from_prometheus(self, now: datetime) -> FleetSnapshot:
        targets, gauges, derived = await asyncio.gather(
            self.api.targets(), self.api.query(GAUGES), self.api.query(self.derived)
        )
        instances = _gather(targets, gauges, derived)
        nodes: dict[str, NodeSnapshot] = {}
        jobs = {item.labels.get("job") for item in instances.values() if self._spec_for(item) or item.gauges}
        for item in instances.values():
            spec = self._spec_for(item)
            if spec is None and not item.gauges and item.labels.get("job") not in jobs:
                continue  # Prometheus' other targets (itself, node exporters of other jobs)
            name = spec.name if spec is not None else str(item.labels.get("node") or item.instance)
            if name not in nodes:
                nodes[name] = self._node(name, spec, item, now)
        for spec in self.specs:
            if spec.name not in nodes:
                nodes[spec.name] = NodeSnapshot(
                    name=spec.name,
                    engine=spec.engine,
                    role=spec.role,
                    health=Health.UNKNOWN,
                    health_reason=f"Prometheus does not scrape {spec.url or spec.name} (add it to prometheus.yml)",
                    source="prometheus",
                    address=spec.url,
                    replication=Replication(upstream=spec.upstream),
                )
        # A stable order (configured nodes as configured, then the others by name): the console
        # rebuilds its cards when the order changes.
        extra = sorted(name for name in nodes if name not in self._by_name)
        ordered = [nodes[spec.name] for spec in self.specs] + [nodes[name] for name in extra]
        return finalize(ordered, self.specs, self.thresholds, now, source="prometheus")

    def _spec_for(self, item: _Instance) -> NodeSpec | None:
        return self._spec_of(item.labels.get("node", ""), item.instance)

    def _spec_of(self, node_label: str, instance: str) -> NodeSpec | None:
        """A series' configured node: by its ``node`` label, else by its address."""
        return self._by_name.get(node_label) or self._by_address.get(instance.lower())

    def _node(self, name: str, spec: NodeSpec | None, item: _Instance, now: datetime) -> NodeSnapshot:
        reachability = self._reachability.setdefault(name, Reachability())
        target = item.target or {}
        scrape_url = str(target.get("scrapeUrl") or f"http://{item.instance}/metrics")
        address = spec.url if spec is not None and spec.url else scrape_url.removesuffix("/metrics")
        state = str(target.get("health", "up" if item.gauges else "unknown"))
        if state == "down":
            error = str(target.get("lastError") or "the last scrape failed")
            failed_spec = spec or NodeSpec(name=name, url=address)  # the scrape URL is http(s)
            return reachability.failed(
                failed_spec,
                now,
                f"Prometheus cannot scrape {scrape_url}: {error}",
                source="prometheus",
                address=address,
            )
        gauges, figures = item.gauges, item.figures
        role = item.role or (spec.role if spec is not None else "unknown")
        corruption = None
        if state != "up" and not gauges:
            health, reason = Health.UNKNOWN, "not scraped by Prometheus yet"
        elif gauges.get("recovering") == 1:
            health, reason = Health.RECOVERING, "recovering: a playbook holds the data dir (Prometheus)"
            if gauges.get("corruption_detected") == 1:  # the damage stays until the run's verify is clean
                corruption = Corruption(
                    detail="the node reports damaged bytes (drconsole_corruption_detected 1); a recovery is under way"
                )
        elif gauges.get("corruption_detected") == 1:
            # Prometheus carries the fact, not the place: the node's /health names the file and offset.
            health, reason = Health.CORRUPT, "corrupt: drconsole_corruption_detected 1 (Prometheus)"
            corruption = Corruption(
                detail="the node reports damaged bytes (drconsole_corruption_detected 1); "
                "GET /health on the node names the file and offset"
            )
        elif role == "fenced" or gauges.get("fenced") == 1:
            health, reason = Health.FENCED, "fenced: a higher epoch exists (Prometheus)"
        else:
            health, reason = Health.OK, f"scraped by Prometheus (job {item.labels.get('job', '?')})"
        node = NodeSnapshot(
            name=name,
            engine=spec.engine if spec is not None else None,
            role=role,
            epoch=_int(gauges.get("epoch")),
            health=health,
            health_reason=reason,
            reachable=True,
            corruption=corruption,
            source="prometheus",
            address=address,
            last_lsn=_int(gauges.get("last_lsn")),
            total_keys=_int(gauges.get("keys")),
            disk=DiskUsage(reported_usage_ratio=gauges.get("disk_usage_ratio")),
            memory=MemoryUsage(reported_usage_ratio=gauges.get("memory_usage_ratio")),
            replication=Replication(
                upstream=spec.upstream if spec is not None else None,
                lag_records=_int(gauges.get("replication_lag_records")),
                lag_bytes=_int(gauges.get("replication_lag_bytes")),
                lag_seconds=gauges.get("replication_lag_seconds"),
                split_brain=gauges.get("split_brain") == 1,
            ),
            backup=BackupState(repo=str(spec.backup_repo) if spec is not None and spec.backup_repo else None),
            performance=Performance(
                write_p95_ms=None if "write_p95" not in figures else figures["write_p95"] * 1000,
                read_p95_ms=None if "read_p95" not in figures else figures["read_p95"] * 1000,
                error_rate_per_second=figures.get("error_rate"),
                errors_total=figures.get("errors_total"),
                write_ops_per_second=figures.get("write_rate"),
                read_ops_per_second=figures.get("read_rate"),
            ),
        )
        return reachability.ok(node)
