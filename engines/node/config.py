"""What ``drconsole node serve`` was asked to do, in one validated object."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from engines.errors import InvalidArgumentError
from engines.scrub import DEFAULT_INTERVAL_SECONDS, DEFAULT_RATE_BYTES

__all__ = ["NodeConfig", "is_loopback", "DEFAULT_MAX_CONNECTIONS", "DEFAULT_BODY_MEMORY", "DEFAULT_IDLE_SECONDS"]

# Four bodies of the default --max-value-bytes at once (engines/node/body_budget.py).
DEFAULT_BODY_MEMORY = 64 * 2**20
DEFAULT_IDLE_SECONDS = 15.0

# Enough for every standby's long poll, the agent's event streams and a busy set of clients; each
# connection holds at most uvicorn's 64 KiB read buffer outside the body budget.
DEFAULT_MAX_CONNECTIONS = 256


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class NodeConfig:
    """Settings of one node.

    Attributes:
        data_dir: the engine's data directory (created with ``engine`` when absent).
        engine: backend for a new data dir; when the dir exists it must match (None: any).
        host, port: where to listen (loopback unless ``allow_remote``).
        name: the node's name (default: the data dir's name).
        follow: the primary's URL: run as its standby.
        peers: other nodes' URLs, polled for role and epoch.
        token: the bearer token admin endpoints require (None: no token).
        archive: a backup repository: the primary archives recycled WAL segments there, and a
            standby that fell behind the primary's WAL reads them from there.
        backup_repo: a backup repository whose newest full backup reseeds this node when it is a
            standby too far behind (no WAL source reaches back) or empty; None: ``archive``, else
            the one the primary advertises. A primary advertises it and ``/admin/backup`` writes there.
        durability: for a new data dir.
        archive_timeout: seconds after its first write that the open WAL segment is sealed and
            archived (PostgreSQL's ``archive_timeout``): a PITR loses at most that much. 0: off.
        wal_hold_max_bytes: the ceiling of WAL kept for an unreachable archive before writes are
            refused (None: the data dir's ``wal_hold_max_bytes`` option).
        scrub_interval: seconds from one background scrub pass to the next (0: no scrub).
        scrub_rate: bytes per second the scrub reads at most (0: unthrottled).
        max_body_memory: what request bodies in flight may hold together; past it 503
            (``body_budget.py``). At least ``max_value_bytes``.
        body_idle_seconds: a client silent this long in the middle of its body gets 408.
        max_connections: connections uvicorn serves at once; more get 503 at once.
        read_token: the bearer token reads of values (``GET /kv``) require (None: open reads);
            the admin token works for reads too.
    """

    data_dir: Path
    port: int
    engine: str | None = None
    host: str = "127.0.0.1"
    name: str = ""
    follow: str | None = None
    peers: list[str] = field(default_factory=list)
    token: str | None = None
    archive: Path | None = None
    backup_repo: Path | None = None
    durability: str = "sync"
    allow_remote: bool = False
    max_key_bytes: int = 1024
    max_value_bytes: int = 16 * 2**20
    peer_interval: float = 1.0
    long_poll_seconds: float = 1.0
    wal_segment_bytes: int | None = None
    advertise_url: str | None = None
    archive_timeout: float = 60.0
    wal_hold_max_bytes: int | None = None
    scrub_interval: float = DEFAULT_INTERVAL_SECONDS
    scrub_rate: float = DEFAULT_RATE_BYTES
    max_body_memory: int = DEFAULT_BODY_MEMORY
    body_idle_seconds: float = DEFAULT_IDLE_SECONDS
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    read_token: str | None = None

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.archive = Path(self.archive) if self.archive is not None else None
        self.backup_repo = Path(self.backup_repo) if self.backup_repo is not None else None
        if not self.name:
            self.name = self.data_dir.name
        if self.archive_timeout < 0:
            raise InvalidArgumentError(f"--archive-timeout must be 0 (off) or more seconds, not {self.archive_timeout}")
        if not 0 <= self.port <= 65535:
            raise InvalidArgumentError(f"port {self.port} is out of range")
        if not self.allow_remote and not is_loopback(self.host):
            raise InvalidArgumentError(
                f"refusing to listen on {self.host}: it is not a loopback address",
                hint="the node API has no TLS; pass --allow-remote to listen there anyway, behind a proxy",
            )
        self.follow = self.follow.rstrip("/") if self.follow else None
        self.peers = [peer.rstrip("/") for peer in self.peers]
        if not 0 < self.max_value_bytes <= self.max_body_memory:
            raise InvalidArgumentError(
                f"--max-body-memory ({self.max_body_memory}) must be at least "
                f"--max-value-bytes ({self.max_value_bytes})",
                hint="else a value of the largest allowed size could never be accepted",
            )
        if self.max_connections < 1 or self.body_idle_seconds <= 0:
            raise InvalidArgumentError("--max-connections and the body idle timeout must be positive")
        if self.scrub_interval < 0 or self.scrub_rate < 0:
            raise InvalidArgumentError(
                "--scrub-interval and --scrub-rate must not be negative",
                hint="0 disables the scrub (interval) or its throttle (rate)",
            )

    @property
    def backup_source(self) -> Path | None:
        """The repository holding this node's full backups (``backup_repo``, else ``archive``)."""
        return self.backup_repo or self.archive

    @property
    def url(self) -> str:
        if self.advertise_url:
            return self.advertise_url.rstrip("/")
        return f"http://{self.host}:{self.port}"
