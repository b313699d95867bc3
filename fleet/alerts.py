"""The reference alert rules, evaluated on one node of a snapshot.

The rules and default thresholds are those of the Orbit guide's ``orbit_alerts.yml``:

    rule            fires when                                  severity
    disk-usage      volume usage  > thresholds.disk_usage (0.85)  critical
    memory-usage    host memory   > thresholds.memory_usage (0.90) critical
    node-down       unreachable for >= node_down_seconds (30)    critical
    corruption      the node reports damaged bytes (health CORRUPT) critical
    error-rate      operation errors/s > error_rate_per_second (0.01) warning
                    (the rate over the last error_rate_window_seconds, 120: not one scrape)
    write-p95       p95 write latency > write_p95_ms (100)        warning
    read-p95        p95 read latency  > read_p95_ms (50)          warning
    split-brain     two primaries in one epoch                   critical
    replication-lag lag_seconds > replication_lag_seconds (off by default) warning
    archive-lag     oldest unarchived write > archive_lag_seconds (300), warning; critical
                    while writes are refused (the WAL held reached its ceiling)
    backup-age      newest full backup > backup_max_age_seconds (26 h), or newest verified one
                    > verified_backup_age_hours (192)                   warning

archive-lag and backup-age are also rules of deploy/prometheus/drconsole-alerts.yml (the node's
``drconsole_archive_lag_seconds`` and ``drconsole_last_*backup_age_seconds``).

The guide's ``for: 2m`` hold times are not applied (a tick shows what is true now), except for
node-down, whose 30 s is the point of the rule. The error rate is averaged over a window instead
(``fleet.metrics.MetricsTracker``, as Prometheus' ``rate(...[2m])``), so a steady error
stream is one alert, not one that fires and clears with every burst of retries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fleet.snapshot import Alert, AlertSeverity, Health, NodeSnapshot

__all__ = ["Thresholds", "evaluate_alerts", "RULES"]

RULES = (
    "disk-usage",
    "memory-usage",
    "node-down",
    "corruption",
    "error-rate",
    "write-p95",
    "read-p95",
    "split-brain",
    "replication-lag",
    "archive-lag",
    "backup-age",
)


class Thresholds(BaseModel):
    """The ``[thresholds]`` table of drconsole.toml."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    disk_usage: float = Field(default=0.85, gt=0, le=1, description="volume usage ratio, 0..1")
    memory_usage: float = Field(default=0.90, gt=0, le=1, description="host memory usage ratio, 0..1")
    node_down_seconds: float = Field(default=30, ge=0)
    write_p95_ms: float = Field(default=100, gt=0)
    read_p95_ms: float = Field(default=50, gt=0)
    error_rate_per_second: float = Field(default=0.01, ge=0)
    error_rate_window_seconds: float = Field(
        default=120, ge=10, le=3600, description="the error rate is averaged over this window"
    )
    replication_lag_seconds: float | None = Field(default=None, gt=0, description="off unless set")
    # No alert of its own either: how far behind a serving standby may be before the console shows
    # it LAGGING instead of OK (a standby 37 s behind is not "OK" to a person reading a wall screen).
    standby_lag_warning_seconds: float = Field(default=10, gt=0, description="a standby further behind shows LAGGING")
    # A daily backup with slack, and five of the node's 60 s archive timeouts (triage uses them too).
    backup_max_age_seconds: float = Field(default=26 * 3600, gt=0, description="newest full backup older is stale")
    archive_lag_seconds: float = Field(default=300, gt=0, description="oldest write not yet in the WAL archive")
    verified_backup_age_hours: float = Field(default=192, gt=0, description="newest verified full backup")


def _percent(ratio: float) -> str:
    return f"{ratio * 100:.0f} %"


def evaluate_alerts(node: NodeSnapshot, thresholds: Thresholds, now: datetime) -> tuple[Alert, ...]:
    """Every rule that fires on ``node`` at ``now``."""
    alerts: list[Alert] = []

    def fire(rule: str, severity: AlertSeverity, message: str, value: float | None, threshold: float | None) -> None:
        alerts.append(
            Alert(rule=rule, severity=severity, node=node.name, message=message, value=value, threshold=threshold)
        )

    if not node.reachable:
        if node.unreachable_since is not None:
            down_for = (now - node.unreachable_since).total_seconds()
            if down_for >= thresholds.node_down_seconds:
                # The message names the moment, not the length: it stays the same while the node is down.
                since = node.unreachable_since.strftime("%H:%M:%S %Z").strip()
                fire(
                    "node-down",
                    AlertSeverity.CRITICAL,
                    f"unreachable since {since} (threshold {thresholds.node_down_seconds:.0f} s)",
                    down_for,
                    thresholds.node_down_seconds,
                )
        # The rest of an unreachable node's figures are stale; do not alert on them.
        return tuple(alerts)
    # Corruption stays an alert while a recovery runs on it (the node drains and says
    # ``recovering``): it clears when the run's verify is clean, not when the run starts.
    if node.health == Health.CORRUPT or (node.health == Health.RECOVERING and node.corruption is not None):
        found = node.corruption
        where = ""
        if found is not None and found.file:
            where = f" in {found.file}" + (f" at offset {found.offset}" if found.offset is not None else "")
        how = f" (found by {found.found_by})" if found is not None and found.found_by else ""
        fire("corruption", AlertSeverity.CRITICAL, f"data corruption{where}{how}", None, None)
    disk = node.disk.usage_ratio
    if disk is not None and disk > thresholds.disk_usage:
        where = f" on {node.disk.volume_path}" if node.disk.volume_path else ""
        fire(
            "disk-usage",
            AlertSeverity.CRITICAL,
            f"disk {_percent(disk)} used{where} (threshold {_percent(thresholds.disk_usage)})",
            disk,
            thresholds.disk_usage,
        )
    memory = node.memory.usage_ratio
    if memory is not None and memory > thresholds.memory_usage:
        fire(
            "memory-usage",
            AlertSeverity.CRITICAL,
            f"memory {_percent(memory)} used (threshold {_percent(thresholds.memory_usage)})",
            memory,
            thresholds.memory_usage,
        )
    errors = node.performance.error_rate_per_second
    if errors is not None and errors > thresholds.error_rate_per_second:
        fire(
            "error-rate",
            AlertSeverity.WARNING,
            f"{errors:.2f} errors/s (threshold {thresholds.error_rate_per_second:g}/s)",
            errors,
            thresholds.error_rate_per_second,
        )
    for rule, value, threshold, what in (
        ("write-p95", node.performance.write_p95_ms, thresholds.write_p95_ms, "write"),
        ("read-p95", node.performance.read_p95_ms, thresholds.read_p95_ms, "read"),
    ):
        if value is not None and value > threshold:
            fire(
                rule,
                AlertSeverity.WARNING,
                f"p95 {what} latency {value:.0f} ms (threshold {threshold:.0f} ms)",
                value,
                threshold,
            )
    if node.replication.split_brain:
        fire("split-brain", AlertSeverity.CRITICAL, f"split brain: a second primary in epoch {node.epoch}", None, None)
    lag = node.replication.lag_seconds
    if thresholds.replication_lag_seconds is not None and lag is not None and lag > thresholds.replication_lag_seconds:
        fire(
            "replication-lag",
            AlertSeverity.WARNING,
            f"replication lag {lag:.0f} s (threshold {thresholds.replication_lag_seconds:.0f} s)",
            lag,
            thresholds.replication_lag_seconds,
        )
    _backup_alerts(node, thresholds, now, fire)
    return tuple(alerts)


def _backup_alerts(node: NodeSnapshot, thresholds: Thresholds, now: datetime, fire: Any) -> None:
    backup = node.backup
    if backup.archive_state == "refusing":
        fire(
            "archive-lag",
            AlertSeverity.CRITICAL,
            f"writes refused: {backup.archive_error or 'WAL held past its ceiling'}",
            backup.archive_lag_seconds,
            thresholds.archive_lag_seconds,
        )
    elif backup.archive_lag_seconds is not None and backup.archive_lag_seconds > thresholds.archive_lag_seconds:
        held = f", {backup.wal_held_bytes / 1e6:.0f} MB of WAL held" if backup.wal_held_bytes else ""
        why = f": {backup.archive_error}" if backup.archive_error else ""
        fire(
            "archive-lag",
            AlertSeverity.WARNING,
            f"WAL archive {backup.archive_lag_seconds / 60:.0f} min behind{held} (threshold "
            f"{thresholds.archive_lag_seconds / 60:.0f} min){why}",
            backup.archive_lag_seconds,
            thresholds.archive_lag_seconds,
        )
    age = backup.age_seconds(now)
    if age is not None and age > thresholds.backup_max_age_seconds:
        fire(
            "backup-age",
            AlertSeverity.WARNING,
            f"newest full backup {age / 3600:.0f} h old (threshold {thresholds.backup_max_age_seconds / 3600:.0f} h)",
            age,
            thresholds.backup_max_age_seconds,
        )
    if backup.last_backup_at is not None:
        # Never verified: as old as the newest backup (a fresh unverified backup is no alert yet).
        verified_at = backup.last_verified_at or backup.last_backup_at
        verified_age = max(0.0, (now - verified_at).total_seconds())
        limit = thresholds.verified_backup_age_hours * 3600
        if verified_age > limit:
            what = (
                "no backup verified yet"
                if backup.last_verified_at is None
                else f"newest verified backup {verified_age / 86400:.0f} d old"
            )
            fire(
                "backup-age",
                AlertSeverity.WARNING,
                f"{what} (threshold {thresholds.verified_backup_age_hours / 24:.0f} d; run `drconsole backup verify`)",
                verified_age,
                limit,
            )
