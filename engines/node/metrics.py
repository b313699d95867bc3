"""The node's Prometheus metrics, named after the reference alert rules (DESIGN.md).

Each node has its own ``CollectorRegistry`` (several nodes may run in one test process).
Latencies and errors are recorded as requests happen; gauges are refreshed at scrape time from
the node's state, so a scrape always shows the present.

The exposition passes ``promtool check metrics`` with no lint finding (tests/integration/prometheus):
base units in names (``_seconds``, ``_bytes``, ``_ratio``), counters exposed with ``_total`` (a
``Counter("drconsole_operation_errors")`` is ``drconsole_operation_errors_total`` on the wire), help on
every metric. deploy/prometheus/drconsole-alerts.yml reads these names: rename both together.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from engines.volume import volume_usage

__all__ = ["METRIC_NAMES", "NodeMetrics", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METRIC_NAMES = (
    "drconsole_write_latency_seconds",
    "drconsole_read_latency_seconds",
    "drconsole_disk_usage_ratio",
    "drconsole_memory_usage_ratio",
    "drconsole_operation_errors_total",
    "drconsole_replication_lag_seconds",
    "drconsole_replication_lag_bytes",
    "drconsole_last_lsn",
    "drconsole_epoch",
    "drconsole_keys",
    "drconsole_archive_lag_seconds",
    "drconsole_last_backup_age_seconds",
    "drconsole_last_verified_backup_age_seconds",
    "drconsole_corruption_detected",
)
_UNKNOWN = float("nan")  # no repository, or no backup yet: the alert rules see no sample above a threshold
# Sync writes cost one fsync (0.1-10 ms); the alert thresholds are 50 and 100 ms.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.write_latency = Histogram(
            "drconsole_write_latency_seconds", "Time to make a write durable", buckets=_BUCKETS, registry=r
        )
        self.read_latency = Histogram(
            "drconsole_read_latency_seconds", "Time to read a key", buckets=_BUCKETS, registry=r
        )
        self.errors = Counter("drconsole_operation_errors", "Failed operations", ["operation"], registry=r)
        self.disk_usage = Gauge("drconsole_disk_usage_ratio", "Used fraction of the data dir's file system", registry=r)
        self.memory_usage = Gauge("drconsole_memory_usage_ratio", "Used fraction of the host's memory", registry=r)
        self.lag_seconds = Gauge(
            "drconsole_replication_lag_seconds", "Primary commit to standby apply, seconds (0 on a primary)", registry=r
        )
        self.lag_bytes = Gauge(
            "drconsole_replication_lag_bytes", "WAL bytes not yet applied (0 on a primary)", registry=r
        )
        self.lag_records = Gauge("drconsole_replication_lag_records", "WAL records not yet applied", registry=r)
        self.last_lsn = Gauge("drconsole_last_lsn", "LSN of the newest write applied", registry=r)
        self.epoch = Gauge("drconsole_epoch", "The node's epoch (bumped by each promotion)", registry=r)
        self.keys = Gauge("drconsole_keys", "Live keys in the engine", registry=r)
        self.split_brain = Gauge("drconsole_split_brain", "1 when another primary holds the same epoch", registry=r)
        self.fenced = Gauge(
            "drconsole_fenced", "1 when the node refuses writes because a higher epoch exists", registry=r
        )
        self.standby_lag_records = Gauge(
            "drconsole_standby_lag_records",
            "Records each standby lacks, as this primary last saw it",
            ["standby"],
            registry=r,
        )
        self.standby_lag_seconds = Gauge(
            "drconsole_standby_lag_seconds",
            "Seconds since the commit of the first record each standby lacks (grows while a standby is stopped)",
            ["standby"],
            registry=r,
        )
        self.role = Gauge("drconsole_role", "The node's role (1 for the current one)", ["role"], registry=r)
        self.archive_lag = Gauge(
            "drconsole_archive_lag_seconds",
            "Age of the oldest write not yet in the WAL archive (0: all archived; NaN: no backup repository)",
            registry=r,
        )
        self.wal_held = Gauge("drconsole_wal_held_bytes", "Sealed WAL kept until it is archived", registry=r)
        self.backup_age = Gauge(
            "drconsole_last_backup_age_seconds",
            "Age of the newest full backup (NaN: no repository or no backup)",
            registry=r,
        )
        self.verified_backup_age = Gauge(
            "drconsole_last_verified_backup_age_seconds",
            "Age of the newest full backup that passed a full verify (NaN: none)",
            registry=r,
        )
        self.corruption = Gauge(
            "drconsole_corruption_detected",
            "1 while the node is corrupt: a read, a compaction or the scrub met damaged bytes "
            "(until a repair clears it)",
            registry=r,
        )
        self.recovering = Gauge("drconsole_recovering", "1 while a playbook holds the data dir", registry=r)
        self.scrub_bytes = Counter(
            "drconsole_scrub_read_bytes", "Bytes the background scrub has read and checked", registry=r
        )
        self.scrub_passes = Counter("drconsole_scrub_passes", "Background scrub passes run", registry=r)
        self.scrub_last = Gauge(
            "drconsole_scrub_last_complete_pass_timestamp_seconds",
            "When the last complete scrub pass ended (0: none yet)",
            registry=r,
        )
        self._scrub_seen = (0, 0)
        for operation in ("get", "put", "delete", "replicate", "admin"):
            self.errors.labels(operation)  # present from the first scrape, at 0

    def render(self, data_dir: Path, refresh: Callable[[], dict[str, Any]]) -> bytes:
        """Refresh the gauges from ``refresh()`` and the host, and return the text format."""
        values = refresh()
        try:
            self.disk_usage.set(volume_usage(data_dir).ratio)
        except OSError:
            self.errors.labels("disk").inc()
        self.memory_usage.set(psutil.virtual_memory().percent / 100.0)
        self.lag_seconds.set(values.get("lag_seconds") or 0.0)
        self.lag_bytes.set(values.get("lag_bytes") or 0)
        self.lag_records.set(values.get("lag_records") or 0)
        self.last_lsn.set(values.get("last_lsn", 0))
        self.epoch.set(values.get("epoch", 0))
        if "keys" in values:  # not while recovering: the engine is closed
            self.keys.set(values["keys"])
        self.split_brain.set(1 if values.get("split_brain") else 0)
        self.fenced.set(1 if values.get("role") == "fenced" else 0)
        for standby in values.get("standbys", []):
            self.standby_lag_records.labels(standby["name"]).set(standby.get("lag_records") or 0)
            self.standby_lag_seconds.labels(standby["name"]).set(standby.get("lag_seconds") or 0.0)
        for gauge, key in (
            (self.archive_lag, "archive_lag_seconds"),
            (self.wal_held, "wal_held_bytes"),
            (self.backup_age, "last_backup_age_seconds"),
            (self.verified_backup_age, "last_verified_backup_age_seconds"),
        ):
            value = values.get(key)
            gauge.set(_UNKNOWN if value is None else value)
        for role in ("primary", "standby", "fenced"):
            self.role.labels(role).set(1 if values.get("role") == role else 0)
        self.corruption.set(1 if values.get("corruption_detected") else 0)
        self.recovering.set(1 if values.get("recovering") else 0)
        read, passes = int(values.get("scrub_bytes_total", 0)), int(values.get("scrub_passes", 0))
        self.scrub_bytes.inc(max(0, read - self._scrub_seen[0]))
        self.scrub_passes.inc(max(0, passes - self._scrub_seen[1]))
        self._scrub_seen = (max(read, self._scrub_seen[0]), max(passes, self._scrub_seen[1]))
        if values.get("scrub_last_complete"):
            self.scrub_last.set(values["scrub_last_complete"])
        return generate_latest(self.registry)
