"""Alertmanager as a source of alerts, and the place silences are made.

``AlertmanagerClient`` reads the firing alerts (``GET /api/v2/alerts``: active, not silenced, not
inhibited) and creates silences (``POST /api/v2/silences``). ``AlertingSource`` wraps any
``FleetSource``: each tick it reads the inner snapshot and Alertmanager concurrently and merges
every firing alert into its node, so the alert strip and the decision tree's probes see them.

An alert is tied to a node by its ``node`` label, else by its ``instance`` (host:port of the
node's URL, or the name a Prometheus source gave an unconfigured target). Its ``rule`` label (the
shipped rules, deploy/prometheus/drconsole-alerts.yml, set it to the console's own rule id)
makes it the same alert as the console's own evaluation of that rule, which it replaces: one
line per fault, and the Alertmanager one can be silenced. Its ``triage`` annotation names the
decision-tree question the responder's triage starts at (``TRIAGE_BY_ALERTNAME`` when absent).

Alertmanager unreachable or answering garbage: the snapshot keeps the console's own alerts and
carries the notice "Alertmanager unreachable: ..."; nothing raises.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from fleet.nodes import NodeSpec
from fleet.prometheus import ApiError, api_json, netloc
from fleet.prometheus_trends import TrendRanges
from fleet.snapshot import Alert, AlertSeverity, FleetSnapshot, Health, NodeSnapshot, utc_now
from fleet.source import Clock, FleetSource

__all__ = [
    "AlertingSource",
    "AlertmanagerClient",
    "RULE_BY_ALERTNAME",
    "SilenceRequest",
    "TRIAGE_BY_ALERTNAME",
    "firing_alert",
    "parse_time",
]

# For alerts from rules that carry no ``rule`` label / ``triage`` annotation (older rule files).
RULE_BY_ALERTNAME = {
    "DrconsoleNodeDown": "node-down",
    "DrconsoleDiskSpaceLow": "disk-usage",
    "DrconsoleMemoryHigh": "memory-usage",
    "DrconsoleErrorRateHigh": "error-rate",
    "DrconsoleHighWriteLatency": "write-p95",
    "DrconsoleHighReadLatency": "read-p95",
    "DrconsoleSplitBrain": "split-brain",
    "DrconsoleReplicationLagHigh": "replication-lag",
}
TRIAGE_BY_ALERTNAME = {
    "DrconsoleNodeDown": "primary-down",
    "DrconsoleDiskSpaceLow": "running-disk",
    "DrconsoleMemoryHigh": "running-memory",
    "DrconsoleErrorRateHigh": "corruption",
    "DrconsoleHighWriteLatency": "running",
    "DrconsoleHighReadLatency": "running",
    "DrconsoleSplitBrain": "split-brain",
    "DrconsoleReplicationLagHigh": "isolated",
}
_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time from Go (nanoseconds, ``Z``) as an aware datetime; None when unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", value.replace("Z", "+00:00")))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def firing_alert(raw: Mapping[str, Any], node: str) -> Alert:
    """One ``/api/v2/alerts`` item as an ``Alert`` on ``node``."""
    labels = {str(k): str(v) for k, v in (raw.get("labels") or {}).items()}
    given = raw.get("annotations")
    annotations: dict[str, Any] = given if isinstance(given, dict) else {}
    name = labels.get("alertname", "alert")
    severity = AlertSeverity.CRITICAL if labels.get("severity") == "critical" else AlertSeverity.WARNING
    summary = str(annotations.get("summary") or annotations.get("description") or "firing")
    return Alert(
        rule=labels.get("rule") or RULE_BY_ALERTNAME.get(name, name),
        severity=severity,
        node=node,
        message=f"{name} (Alertmanager): {summary}",
        source="alertmanager",
        since=parse_time(raw.get("startsAt")),
        triage=str(annotations.get("triage") or TRIAGE_BY_ALERTNAME.get(name) or "") or None,
        labels=tuple(sorted(labels.items())),
    )


@dataclass(frozen=True)
class SilenceRequest:
    """What a silence needs: the alert's labels as exact matchers, how long, who and why."""

    labels: tuple[tuple[str, str], ...]
    duration_seconds: float
    author: str
    comment: str

    def body(self, now: datetime) -> dict[str, Any]:
        if not self.labels:
            raise ValueError("an alert without labels cannot be silenced (the silence would match everything)")
        if self.duration_seconds <= 0:
            raise ValueError("a silence lasts a positive duration")
        if not self.author.strip() or not self.comment.strip():
            raise ValueError("a silence needs an author and a comment")
        ends = now + timedelta(seconds=self.duration_seconds)
        return {
            "matchers": [
                {"name": name, "value": value, "isRegex": False, "isEqual": True} for name, value in self.labels
            ],
            "startsAt": now.isoformat(),
            "endsAt": ends.isoformat(),
            "createdBy": self.author,
            "comment": self.comment,
        }


class AlertmanagerClient:
    """``/api/v2/alerts`` and ``/api/v2/silences`` over one client for the app's life."""

    def __init__(self, url: str, *, timeout_seconds: float = 2.0, client: httpx.AsyncClient | None = None) -> None:
        self.url = url.rstrip("/")
        self.http = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds), headers={"User-Agent": "drconsole"}
        )

    async def firing(self) -> list[dict[str, Any]]:
        body = await api_json(
            self.http,
            "GET",
            f"{self.url}/api/v2/alerts",
            what="Alertmanager /api/v2/alerts",
            params={"active": "true", "silenced": "false", "inhibited": "false"},
        )
        if not isinstance(body, list):
            raise ApiError("Alertmanager /api/v2/alerts: expected a list of alerts")
        return [item for item in body if isinstance(item, dict) and isinstance(item.get("labels"), dict)]

    async def silence(self, request: SilenceRequest, now: datetime | None = None) -> str:
        """Create the silence; its id. ``ApiError`` says why Alertmanager refused or did not answer."""
        body = await api_json(
            self.http,
            "POST",
            f"{self.url}/api/v2/silences",
            what="Alertmanager /api/v2/silences",
            json=request.body(now or utc_now()),
        )
        silence_id = body.get("silenceID") if isinstance(body, dict) else None
        if not isinstance(silence_id, str) or not silence_id:
            raise ApiError("Alertmanager /api/v2/silences: the answer has no silenceID")
        return silence_id

    async def aclose(self) -> None:
        await self.http.aclose()


class AlertingSource:
    """``inner``'s snapshots with Alertmanager's firing alerts merged into their nodes."""

    def __init__(
        self, inner: FleetSource, alertmanager: AlertmanagerClient, specs: Sequence[NodeSpec], *, clock: Clock = utc_now
    ) -> None:
        self.inner = inner
        self.alertmanager = alertmanager
        self.clock = clock
        self._by_address = {netloc(spec.url): spec.name for spec in specs if spec.url is not None}
        self._notice_since: datetime | None = None

    async def collect(self) -> FleetSnapshot:
        snapshot, firing = await asyncio.gather(self.inner.collect(), self._firing())
        if isinstance(firing, str):
            return snapshot.model_copy(update={"notices": (*snapshot.notices, firing)})
        return self.merge(snapshot, firing)

    async def aclose(self) -> None:
        await self.inner.aclose()
        await self.alertmanager.aclose()

    async def trend_ranges(self, span_seconds: float, step_seconds: float) -> TrendRanges | None:
        """The inner source's trends when it reads them as ranges (Prometheus), else None."""
        ranges = getattr(self.inner, "trend_ranges", None)
        return None if ranges is None else await ranges(span_seconds, step_seconds)

    async def _firing(self) -> list[dict[str, Any]] | str:
        try:
            firing = await self.alertmanager.firing()
        except ApiError as exc:
            if self._notice_since is None:
                self._notice_since = self.clock()
            since = self._notice_since.strftime("%H:%M:%S %Z").strip()
            return f"Alertmanager unreachable since {since} — showing the console's own alert rules only ({exc})"
        self._notice_since = None
        return firing

    def node_for(self, labels: Mapping[str, str], snapshot: FleetSnapshot) -> str | None:
        names = {node.name for node in snapshot.nodes}
        for candidate in (
            labels.get("node"),
            self._by_address.get(labels.get("instance", "").lower()),
            labels.get("instance"),
        ):
            if candidate in names:
                return candidate
        instance = labels.get("instance", "").lower()
        for node in snapshot.nodes:  # an address the source read it from (an unconfigured target)
            if instance and node.address and node.address.startswith("http") and netloc(node.address) == instance:
                return node.name
        return None

    def merge(self, snapshot: FleetSnapshot, firing: Sequence[Mapping[str, Any]]) -> FleetSnapshot:
        by_node: dict[str, list[Alert]] = {}
        loose: list[str] = []
        # Critical first: of two alerts for one rule on one node (lag high, lag critical), the worse stays.
        ordered = sorted(firing, key=lambda raw: raw["labels"].get("severity") != "critical")
        for raw in ordered:
            labels = {str(k): str(v) for k, v in raw["labels"].items()}
            node = self.node_for(labels, snapshot)
            if node is None:
                summary = (raw.get("annotations") or {}).get("summary", "")
                loose.append(
                    f"Alertmanager: {labels.get('alertname', 'alert')} firing, not tied to a node"
                    + (f": {summary}" if summary else "")
                )
                continue
            alert = firing_alert(raw, node)
            if all(alert.key != other.key for other in by_node.get(node, [])):
                by_node.setdefault(node, []).append(alert)
        nodes = tuple(_with_alerts(node, by_node.get(node.name, [])) for node in snapshot.nodes)
        return snapshot.model_copy(update={"nodes": nodes, "notices": (*snapshot.notices, *loose)})


def _with_alerts(node: NodeSnapshot, firing: list[Alert]) -> NodeSnapshot:
    if not firing:
        return node
    replaced = {alert.key for alert in firing}
    alerts = (*firing, *(alert for alert in node.alerts if alert.key not in replaced))
    update: dict[str, Any] = {"alerts": alerts}
    critical = [alert for alert in firing if alert.severity == AlertSeverity.CRITICAL]
    if critical and node.health in (Health.OK, Health.UNKNOWN):
        update["health"], update["health_reason"] = Health.DEGRADED, critical[0].message
    return node.model_copy(update=update)
