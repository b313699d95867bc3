"""The fleet snapshot: what every pane renders and every probe reads, one per refresh tick.

A ``FleetSnapshot`` is immutable and timestamped. Sources build one per tick (``LocalSource``
from data directories and psutil, ``HttpSource`` from the nodes' HTTP API); the console renders
it and the decision tree's probes answer questions from it. Nothing here does I/O.

    FleetSnapshot
    └── NodeSnapshot (one per node)
        ├── health + health_reason, reachable + unreachable_since
        ├── DiskUsage (volume total/used, DiskComponents: wal, store, snapshots, backups, quarantine)
        ├── MemoryUsage (host, node RSS, memtable, cache)
        ├── Replication (upstream, lag in records/bytes/seconds, split_brain)
        ├── BackupState (last backup time, verified)
        ├── Performance (p95 latencies, error rate)
        └── alerts (from ``fleet.alerts``)

Sizes are bytes, durations seconds, ratios 0..1; ``None`` means "not known", never zero.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engines.volume import VolumeUsage

__all__ = [
    "Alert",
    "AlertSeverity",
    "BackupState",
    "Corruption",
    "DiskComponents",
    "DiskUsage",
    "FleetSnapshot",
    "Health",
    "MemoryUsage",
    "NodeSnapshot",
    "Performance",
    "Replication",
    "utc_now",
]


def utc_now() -> datetime:
    """The current time, timezone-aware (UTC): every time in a snapshot is aware."""
    return datetime.now(UTC)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Health(StrEnum):
    """A node's health. The console always shows it as a symbol and a word, never colour alone."""

    OK = "ok"
    DEGRADED = "degraded"  # serving, with a reason (disk, memory, archive lag, stale backup)
    RECOVERING = "recovering"  # a playbook holds the data dir; clients get 503 "recovering"
    FENCED = "fenced"  # an old primary that saw a higher epoch; it refuses writes
    DOWN = "down"
    CORRUPT = "corrupt"  # a read, a compaction or the scrub met a checksum failure
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        """Badness, for picking the worst of several: ok < unknown < degraded < fenced < recovering < down < corrupt."""
        return {"ok": 0, "unknown": 1, "degraded": 2, "fenced": 3, "recovering": 4, "down": 5, "corrupt": 6}[self.value]


class AlertSeverity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class Alert(_Frozen):
    """One firing alert rule on one node ("disk 91 % used on /data, threshold 85 %")."""

    rule: str  # "disk-usage", "memory-usage", "node-down", "error-rate", "write-p95", "read-p95", "split-brain"
    severity: AlertSeverity
    node: str
    message: str
    value: float | None = None
    threshold: float | None = None
    # An alert from Alertmanager (``source="alertmanager"``) keeps what silencing and triage need:
    # its labels (the silence's matchers), since when it fires, and the tree question it starts.
    source: str = "rules"  # "rules" (fleet.alerts) | "alertmanager"
    since: datetime | None = None
    triage: str | None = None  # a decision-tree question id (playbooks/library/tree.toml)
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        """Identity across ticks: the same rule on the same node is the same alert."""
        return (self.node, self.rule)


class DiskComponents(_Frozen):
    """What drconsole's own files take on the volume."""

    wal_bytes: int | None = None
    store_bytes: int | None = None  # pages / SSTables / RocksDB files
    snapshots_bytes: int | None = None
    backups_bytes: int | None = None
    quarantine_bytes: int | None = None

    @property
    def total_bytes(self) -> int:
        return sum(
            value or 0
            for value in (
                self.wal_bytes,
                self.store_bytes,
                self.snapshots_bytes,
                self.backups_bytes,
                self.quarantine_bytes,
            )
        )


class DiskUsage(_Frozen):
    """The data dir's volume as ``df`` counts it (engines/volume.py).

    ``volume_available_bytes`` is what a writer without privilege can still get. Without it (a
    node older than that field), the ratio and the room fall back to size less used, which
    counts the blocks reserved for root as room.
    """

    volume_path: str | None = None
    volume_total_bytes: int | None = None
    volume_used_bytes: int | None = None
    volume_available_bytes: int | None = None
    reported_usage_ratio: float | None = None  # what a node reports when the bytes are not known
    components: DiskComponents = Field(default_factory=DiskComponents)

    @property
    def usage_ratio(self) -> float | None:
        if self.volume_used_bytes is not None and self.volume_available_bytes is not None:
            return VolumeUsage(self.volume_total_bytes or 0, self.volume_used_bytes, self.volume_available_bytes).ratio
        if not self.volume_total_bytes or self.volume_used_bytes is None:
            return self.reported_usage_ratio
        return self.volume_used_bytes / self.volume_total_bytes

    @property
    def free_bytes(self) -> int | None:
        if self.volume_available_bytes is not None:
            return self.volume_available_bytes
        if self.volume_total_bytes is None or self.volume_used_bytes is None:
            return None
        return max(0, self.volume_total_bytes - self.volume_used_bytes)


class MemoryUsage(_Frozen):
    host_total_bytes: int | None = None
    host_used_bytes: int | None = None
    node_rss_bytes: int | None = None
    memtable_bytes: int | None = None
    cache_bytes: int | None = None
    reported_usage_ratio: float | None = None

    @property
    def usage_ratio(self) -> float | None:
        """Host memory in use (the reference rule's "memory usage"), 0..1."""
        if not self.host_total_bytes or self.host_used_bytes is None:
            return self.reported_usage_ratio
        return self.host_used_bytes / self.host_total_bytes


class Replication(_Frozen):
    """The replication state of one node, in the shape of the node's ``GET /replication``."""

    upstream: str | None = None
    applied_lsn: int | None = None
    primary_lsn: int | None = None
    lag_records: int | None = None
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    split_brain: bool = False
    standbys: tuple[str, ...] = ()  # the standbys a primary serves (names or URLs), for replication groups
    connected: bool | None = None  # a standby's link to its upstream (None: not a standby, or not reported)


class BackupState(_Frozen):
    """The newest backup, the newest verified one, and how the WAL reaches the archive."""

    repo: str | None = None
    last_backup_at: datetime | None = None
    last_backup_id: str | None = None
    verified: bool | None = None
    error: str | None = None
    last_verified_at: datetime | None = None
    archive_state: str | None = None  # ok | pending | failing | refusing | held | standby (engines/archiving.py)
    archive_lag_seconds: float | None = None
    wal_held_bytes: int | None = None
    archive_error: str | None = None

    def age_seconds(self, now: datetime) -> float | None:
        if self.last_backup_at is None:
            return None
        return max(0.0, (now - self.last_backup_at).total_seconds())


class Performance(_Frozen):
    write_p95_ms: float | None = None
    read_p95_ms: float | None = None
    write_ops_per_second: float | None = None  # writes (and reads) served per second, between two readings
    read_ops_per_second: float | None = None
    error_rate_per_second: float | None = None
    errors_total: float | None = None


class Corruption(_Frozen):
    """Where a node met damaged bytes (its ``/health`` ``corruption`` object)."""

    file: str | None = None
    offset: int | None = None
    detail: str = ""
    found_by: str = ""  # "read" | "compaction" | "scrub"
    since: datetime | None = None


class NodeSnapshot(_Frozen):
    """One node at one tick."""

    name: str
    engine: str | None = None  # "cow" | "lsm" | "rocksdb"; None when not known (unreachable)
    role: str = "unknown"  # "primary" | "standby" | "unknown"
    epoch: int | None = None
    health: Health = Health.UNKNOWN
    health_reason: str = ""
    corruption: Corruption | None = None  # set while health is CORRUPT
    group: str | None = None  # replication group: nodes that replicate share one (split brain is per group)
    reachable: bool = True
    unreachable_since: datetime | None = None
    source: str = "local"  # "local" | "http" | "fixture"
    address: str | None = None  # the data dir or URL the source read
    last_lsn: int | None = None
    total_keys: int | None = None
    disk: DiskUsage = Field(default_factory=DiskUsage)
    memory: MemoryUsage = Field(default_factory=MemoryUsage)
    replication: Replication = Field(default_factory=Replication)
    backup: BackupState = Field(default_factory=BackupState)
    performance: Performance = Field(default_factory=Performance)
    peers: tuple[str, ...] = ()
    # Of ``peers``, those the node reached at its last poll (None: it does not report it), and the
    # primaries its reachable peers name: two different ones within a group is a partition.
    peers_reachable: tuple[str, ...] | None = None
    primaries_named: tuple[str, ...] = ()
    alerts: tuple[Alert, ...] = ()

    @field_validator("unreachable_since")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("times in a snapshot must be timezone-aware")
        return value


class FleetSnapshot(_Frozen):
    """Every node at one instant (``taken_at``, timezone-aware)."""

    taken_at: datetime
    nodes: tuple[NodeSnapshot, ...] = ()
    source: str = ""  # a short description of where it came from ("local", "http", "fixture")
    notices: tuple[str, ...] = ()  # a degraded source says so ("Prometheus unreachable since ...")

    @field_validator("taken_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("taken_at must be timezone-aware")
        return value

    @property
    def alerts(self) -> tuple[Alert, ...]:
        """Every firing alert of every node, critical first."""
        found = [alert for node in self.nodes for alert in node.alerts]
        found.sort(key=lambda alert: (alert.severity != AlertSeverity.CRITICAL, alert.node, alert.rule))
        return tuple(found)

    @property
    def split_brain_nodes(self) -> tuple[str, ...]:
        return tuple(node.name for node in self.nodes if node.replication.split_brain)

    def node(self, name: str) -> NodeSnapshot | None:
        for node in self.nodes:
            if node.name == name:
                return node
        return None

    def worst_health(self) -> Health:
        if not self.nodes:
            return Health.UNKNOWN
        return max((node.health for node in self.nodes), key=lambda health: health.rank)
