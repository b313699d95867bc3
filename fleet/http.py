"""``HttpSource``: the fleet read from the nodes' HTTP API (``drconsole node serve``).

Per node and per tick, concurrently: ``GET /health`` (200 or 503; backend, role, epoch,
last_lsn, stats), ``GET /replication`` (role, epoch, upstream, applied_lsn, primary_lsn,
lag_records, lag_bytes, lag_seconds, split_brain), ``GET /metrics`` (Prometheus text) and
``GET /peers``. Each node has its own ``httpx.AsyncClient`` for the source's whole life (see
``node_client``). Every request has a
timeout and the tick has a deadline, so a slow or dead node costs at most that and shows as
"unreachable since HH:MM:SS". Only ``/health`` decides reachability; the other three are
optional, and a node that lacks one simply shows less.

Optional ``/health`` fields read when present: ``status`` (a node's: "healthy" | "degraded" |
"corrupt" | "recovering" | "fenced" | "split-brain"; others' "ok" | "down"), ``reason``,
``corruption`` {file, offset, detail, found_by, since (ISO 8601)}, ``disk`` {path, total_bytes,
used_bytes, available_bytes}, ``memory`` {host_total_bytes, host_used_bytes, rss_bytes}, ``components``
{wal_bytes, store_bytes, snapshots_bytes, backups_bytes, quarantine_bytes}, ``backup``
{last_backup_at (ISO 8601), last_backup_id, verified, last_verified_at}, ``archive`` {state,
lag_seconds, held_bytes, error} (how the WAL reaches the archive).

A node answers /health with 503 when it must not take traffic (corrupt, recovering, fenced); it
answered, so it is reachable and shows as that state, never as "down". A 503 without a known
status word is DOWN ("not serving").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from fleet.alerts import Thresholds
from fleet.local import ProcessFinder, in_daemon_thread, read_backup_state
from fleet.metrics import DEFAULT_RATE_WINDOW_SECONDS, MetricsReading, MetricsTracker, parse_metrics
from fleet.mixed import DEFAULT_TIMEOUT_SECONDS
from fleet.nodes import NodeSpec
from fleet.snapshot import (
    BackupState,
    Corruption,
    DiskComponents,
    DiskUsage,
    Health,
    MemoryUsage,
    NodeSnapshot,
    Performance,
    Replication,
    utc_now,
)
from fleet.source import Clock, Reachability, ReaderSource

__all__ = ["node_client", "HttpSource", "HttpNodeReader", "DEFAULT_TIMEOUT_SECONDS"]

_HEALTH_WORDS = {
    "ok": Health.OK,
    "healthy": Health.OK,
    "degraded": Health.DEGRADED,
    "down": Health.DOWN,
    "unhealthy": Health.DOWN,
    "fenced": Health.FENCED,
    "corrupt": Health.CORRUPT,
    "recovering": Health.RECOVERING,
}


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _refused(exc: BaseException) -> bool:
    """Whether a connect failed because nothing listens there (httpx words it "All connection attempts
    failed" and keeps the ConnectionRefusedError in the chain): the process is gone, not hung."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError) or "refused" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused" if _refused(exc) else f"cannot connect: {exc}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class HttpNodeReader:
    """Reads one node over HTTP with a client shared by the whole source."""

    def __init__(
        self,
        spec: NodeSpec,
        client: httpx.AsyncClient,
        processes: ProcessFinder | None = None,
        *,
        rate_window_seconds: float = DEFAULT_RATE_WINDOW_SECONDS,
    ) -> None:
        if spec.url is None:
            raise ValueError(f"node {spec.name!r} has no url")
        self.spec = spec
        self.processes = processes or ProcessFinder()
        self.url = spec.url
        self.client = client
        self.reachability = Reachability()
        self.metrics = MetricsTracker(rate_window_seconds)

    def unreachable(self, now: datetime, reason: str) -> NodeSnapshot:
        return self.reachability.failed(self.spec, now, reason, source="http", address=self.url)

    async def aclose(self) -> None:
        return None

    async def _get(self, path: str) -> httpx.Response:
        return await self.client.get(f"{self.url}{path}")

    async def read(self, now: datetime) -> NodeSnapshot:
        health, replication, metrics, peers = await asyncio.gather(
            self._get("/health"),
            self._get("/replication"),
            self._get("/metrics"),
            self._get("/peers"),
            return_exceptions=True,
        )
        if isinstance(health, BaseException):
            if isinstance(health, (httpx.HTTPError, OSError)):
                return self.unreachable(now, f"GET {self.url}/health: {_describe(health)}")
            raise health
        local = None
        if self.spec.backup_repo is not None or self.spec.data_dir is not None:
            # What this box can add (the backup repository, the node process's RSS), read off the
            # event loop in a daemon thread: a dead disk must neither stall the tick nor keep the
            # console from exiting.
            local = await in_daemon_thread(
                self._local_facts, bool(self._json(health).get("backup")), name=f"drconsole-local-{self.spec.name}"
            )
        return self._build(now, health, replication, metrics, peers, local)

    def _local_facts(self, reported_backup: bool) -> tuple[BackupState | None, int | None]:
        backup = None
        if not reported_backup and self.spec.backup_repo is not None and self.spec.backup_repo.exists():
            backup = read_backup_state(self.spec.backup_repo)
        rss = self.processes.rss_bytes(Path(self.spec.data_dir)) if self.spec.data_dir is not None else None
        return backup, rss

    def _json(self, response: httpx.Response | BaseException) -> dict[str, Any]:
        if isinstance(response, BaseException) or response.status_code not in (200, 503):
            return {}
        try:
            return _dict(response.json())
        except ValueError:
            return {}

    def _build(
        self,
        now: datetime,
        health_response: httpx.Response,
        replication_response: Any,
        metrics_response: Any,
        peers_response: Any,
        local: tuple[BackupState | None, int | None] | None,
    ) -> NodeSnapshot:
        local_backup, local_rss = local or (None, None)
        body = self._json(health_response)
        stats = _dict(body.get("stats"))
        replication = self._json(replication_response)
        reading = MetricsReading()
        notes: list[str] = []
        if isinstance(metrics_response, httpx.Response) and metrics_response.status_code == 200:
            try:
                reading = parse_metrics(metrics_response.text)
            except ValueError:
                notes.append("/metrics is not Prometheus text")
        rates = self.metrics.update(reading, time.monotonic())
        health, reason = self._health(health_response, body)
        if notes:
            reason = f"{reason}; {'; '.join(notes)}"
        disk = _dict(body.get("disk"))
        memory = _dict(body.get("memory"))
        components = _dict(body.get("components"))
        wal = _int(components.get("wal_bytes", stats.get("wal_bytes")))
        used = _int(stats.get("disk_usage_bytes"))
        store = _int(components.get("store_bytes"))
        if store is None and used is not None:
            store = max(0, used - (wal or 0))
        node = NodeSnapshot(
            name=self.spec.name,
            engine=body.get("backend") or stats.get("backend") or self.spec.engine,
            role=str(replication.get("role") or body.get("role") or self.spec.role),
            epoch=_int(replication.get("epoch", body.get("epoch"))),
            health=health,
            health_reason=reason,
            reachable=True,
            source="http",
            address=self.url,
            # A node recovering from corruption still holds the damage until its run's verify is
            # clean: keep reporting it, or the alert would clear when the drain starts.
            corruption=(
                self._corruption(body)
                if health == Health.CORRUPT or (health == Health.RECOVERING and _dict(body.get("corruption")))
                else None
            ),
            last_lsn=_int(body.get("last_lsn", stats.get("last_lsn"))),
            total_keys=_int(stats.get("total_keys")),
            disk=DiskUsage(
                volume_path=disk.get("path"),
                volume_total_bytes=_int(disk.get("total_bytes")),
                volume_used_bytes=_int(disk.get("used_bytes")),
                volume_available_bytes=_int(disk.get("available_bytes")),
                reported_usage_ratio=reading.get("drconsole_disk_usage_ratio"),
                components=DiskComponents(
                    wal_bytes=wal,
                    store_bytes=store,
                    snapshots_bytes=_int(components.get("snapshots_bytes")),
                    backups_bytes=_int(components.get("backups_bytes")),
                    quarantine_bytes=_int(components.get("quarantine_bytes")),
                ),
            ),
            memory=MemoryUsage(
                host_total_bytes=_int(memory.get("host_total_bytes")),
                host_used_bytes=_int(memory.get("host_used_bytes")),
                node_rss_bytes=_int(memory.get("rss_bytes"))
                or _int(reading.get("process_resident_memory_bytes"))
                or local_rss,
                memtable_bytes=_int(stats.get("memory_usage_bytes")),
                cache_bytes=_int(_dict(stats.get("details")).get("cache_bytes")),
                reported_usage_ratio=reading.get("drconsole_memory_usage_ratio"),
            ),
            replication=Replication(
                upstream=replication.get("upstream") or self.spec.upstream,
                applied_lsn=_int(replication.get("applied_lsn")),
                primary_lsn=_int(replication.get("primary_lsn")),
                lag_records=_int(replication.get("lag_records")),
                lag_bytes=_int(replication.get("lag_bytes")),
                lag_seconds=_float(replication.get("lag_seconds", reading.get("drconsole_replication_lag_seconds"))),
                split_brain=bool(replication.get("split_brain", False)),
                standbys=self._standbys(replication),
                connected=replication["connected"] if isinstance(replication.get("connected"), bool) else None,
            ),
            backup=local_backup or self._backup(_dict(body.get("backup")), _dict(body.get("archive"))),
            performance=Performance(
                write_p95_ms=rates.write_p95_ms,
                read_p95_ms=rates.read_p95_ms,
                error_rate_per_second=rates.error_rate_per_second,
                errors_total=rates.errors_total,
                write_ops_per_second=rates.write_ops_per_second,
                read_ops_per_second=rates.read_ops_per_second,
            ),
            **self._peer_view(peers_response),
        )
        return self.reachability.ok(node)

    def _health(self, response: httpx.Response, body: dict[str, Any]) -> tuple[Health, str]:
        reason = str(body.get("reason") or body.get("error") or body.get("fence_reason") or "")
        word = str(body.get("status", "")).lower()
        if response.status_code == 200:
            if not reason:
                # Minutes, not seconds: a reason that changes every tick redraws a line every tick.
                uptime = _float(body.get("uptime_seconds"))
                up = "" if uptime is None else (", up <1 min" if uptime < 60 else f", up {uptime // 60:.0f} min")
                reason = (word or "answers /health") + up
            return _HEALTH_WORDS.get(word, Health.OK), reason
        if response.status_code == 503:
            return _HEALTH_WORDS.get(word, Health.DOWN), reason or "GET /health: 503 (not serving)"
        return Health.UNKNOWN, f"GET /health answered {response.status_code}; is {self.url} a drconsole node?"

    @staticmethod
    def _corruption(body: dict[str, Any]) -> Corruption:
        reported = _dict(body.get("corruption"))
        since = reported.get("since")
        try:
            parsed = datetime.fromisoformat(since) if isinstance(since, str) else None
        except ValueError:
            parsed = None
        return Corruption(
            file=reported.get("file") if isinstance(reported.get("file"), str) else None,
            offset=_int(reported.get("offset")),
            detail=str(reported.get("detail") or body.get("reason") or "the node reports corruption"),
            found_by=str(reported.get("found_by") or ""),
            since=parsed if parsed is None or parsed.tzinfo else None,
        )

    def _backup(self, reported: dict[str, Any], archive: dict[str, Any]) -> BackupState:
        wal = {
            "archive_state": archive.get("state") if isinstance(archive.get("state"), str) else None,
            "archive_lag_seconds": _float(archive.get("lag_seconds")),
            "wal_held_bytes": _int(archive.get("held_bytes")),
            "archive_error": archive.get("error") if isinstance(archive.get("error"), str) else None,
        }
        if reported.get("last_backup_at") or reported.get("last_backup_id"):
            return BackupState(
                last_backup_at=_moment(reported.get("last_backup_at")),
                last_backup_id=reported.get("last_backup_id"),
                verified=reported.get("verified") if isinstance(reported.get("verified"), bool) else None,
                last_verified_at=_moment(reported.get("last_verified_at")),
                **wal,
            )
        return BackupState(
            repo=str(self.spec.backup_repo) if self.spec.backup_repo else None,
            error=reported.get("error") if isinstance(reported.get("error"), str) else None,
            **wal,
        )

    @staticmethod
    def _standbys(replication: dict[str, Any]) -> tuple[str, ...]:
        """The standbys a primary serves, by name (what replication groups are built from)."""
        items = replication.get("standbys")
        if not isinstance(items, list):
            return ()
        return tuple(str(item["name"]) for item in items if isinstance(item, dict) and item.get("name"))

    @staticmethod
    def _peer_view(response: Any) -> dict[str, Any]:
        """``peers``, ``peers_reachable`` and ``primaries_named`` of the node's ``GET /peers``."""
        if not isinstance(response, httpx.Response) or response.status_code != 200:
            return {}
        try:
            body = response.json()
        except ValueError:
            return {}
        items = body.get("peers", []) if isinstance(body, dict) else body
        if not isinstance(items, list):
            return {}
        names, reachable = [], []
        for item in items:
            if isinstance(item, str):
                names.append(item)
            elif isinstance(item, dict) and (item.get("name") or item.get("url")):
                names.append(str(item.get("name") or item.get("url")))
                if item.get("reachable"):
                    reachable.append(names[-1])
        view: dict[str, Any] = {"peers": tuple(names)}
        if isinstance(body, dict) and items and all(isinstance(item, dict) for item in items):
            view["peers_reachable"] = tuple(reachable)
            named = body.get("primaries_named")
            if isinstance(named, list):
                view["primaries_named"] = tuple(str(item) for item in named)
        return view


def node_client(timeout_seconds: float) -> httpx.AsyncClient:
    """The HTTP client of one node, kept for the source's life (its connections stay open between ticks).

    One client per node, not one for the fleet: httpcore's pool matches every queued request
    against every connection, so a single pool serving 200 nodes x 4 requests spent ~10 s of CPU
    per tick (measured with bench/prometheus_bench.py's fleet) and no node answered in time.
    """
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout_seconds), headers={"User-Agent": "drconsole"})


class HttpSource(ReaderSource):
    """Every node read over HTTP; ``timeout_seconds`` bounds each request (``client``: one for all, in tests)."""

    def __init__(
        self,
        specs: Sequence[NodeSpec],
        *,
        thresholds: Thresholds | None = None,
        clock: Clock = utc_now,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.clients = [client] if client is not None else [node_client(timeout_seconds) for _spec in specs]
        window = (thresholds or Thresholds()).error_rate_window_seconds
        readers = [
            HttpNodeReader(spec, self.clients[0 if client is not None else index], rate_window_seconds=window)
            for index, spec in enumerate(specs)
        ]
        super().__init__(
            readers, specs, thresholds=thresholds, clock=clock, deadline_seconds=timeout_seconds * 1.5, label="http"
        )

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


def _moment(value: Any) -> datetime | None:
    """An ISO 8601 time with its zone (``...Z`` included), else None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None
