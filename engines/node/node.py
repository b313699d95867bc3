"""One node: an open engine, its role in the cluster, and the transitions between roles.

HTTP lives in ``app.py``; this module is what the routes call. Roles:

    primary --(learns of a higher epoch)--> fenced --(demote --follow URL)--> standby
    standby --(promote: epoch + 1)--> primary

A primary takes client writes. A standby applies what its follower (``replication.py``) pulls
from its upstream and refuses client writes, naming the primary. A fenced node refuses writes at
the engine too (``Engine.fence``), so nothing in this process can write behind the new primary's
back; it still serves reads, and can be rejoined as a standby.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from engines import create_engine, open_engine
from engines.base import Engine
from engines.errors import InvalidArgumentError, SafetyRefusal
from engines.node.config import NodeConfig
from engines.node.errors import NodeRefusedError
from engines.node.metrics import NodeMetrics
from engines.node.state import NodeState, TimelineEntry, load_state, persist_epoch, save_state, switch_lsn
from engines.node.wal_tail import WalTail

__all__ = ["Node", "RESERVED_PREFIX", "READY_KEY"]

RESERVED_PREFIX = b"__drconsole__/"
READY_KEY = RESERVED_PREFIX + b"ready"


class Node:
    """The engine a node serves, and its role. Thread-safe; blocking (call from worker threads)."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.metrics = NodeMetrics()
        self._lock = threading.RLock()
        self._commit = threading.Condition(threading.Lock())
        self.committed_lsn = 0
        self.engine: Engine = self._open_engine()
        self.committed_lsn = self.engine.last_lsn
        self.tail = WalTail(self.engine.wal_dir)
        saved = load_state(config.data_dir)
        self.state = saved or NodeState(known_epoch=self.engine.epoch)
        self.state.known_epoch = max(self.state.known_epoch, self.engine.epoch)
        if config.follow:
            # The operator says follow: even an old primary rejoins so; the upstream refuses it if
            # its log diverged (check_follower).
            self.state.role = "standby"
            self.state.upstream = config.follow
        elif self.state.role == "primary" and self.state.known_epoch > self.engine.epoch:
            self.state.role = "fenced"
            self.state.fence_reason = f"epoch {self.state.known_epoch} exists elsewhere"
        if self.state.role == "fenced":
            self.engine.fence(self.state.fence_reason or "fenced")
        save_state(config.data_dir, self.state)
        self.standbys: dict[str, dict[str, Any]] = {}
        self.follower: Any = None
        self.peers: Any = None
        self.archive: Any = None
        self.closed = False
        self.started_at = time.time()

    # ------------------------------------------------------------------ lifecycle
    def _open_engine(self) -> Engine:
        config = self.config
        path = config.data_dir
        if not path.exists() or (path.is_dir() and not any(path.iterdir())):
            if config.engine is None:
                raise InvalidArgumentError(f"data dir {path} does not exist",
                                           hint="pass --engine to create it, or check the path")
            options: dict[str, Any] = {}
            if config.wal_segment_bytes:
                options["wal_segment_bytes"] = config.wal_segment_bytes
            return create_engine(path, config.engine, durability=config.durability, node_name=config.name,
                                 **options)
        return open_engine(path, "rw", backend=config.engine)

    def start(self) -> None:
        """Start the background work: following the upstream, polling peers, archiving."""
        from engines.node.peers import PeerMonitor

        if self.state.role == "primary":
            self._attach_archiver()
        if self.state.role == "standby":
            self._start_follower()
        if self.config.peers:
            self.peers = PeerMonitor(self, self.config.peers, self.config.peer_interval)
            self.peers.start()

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
        with self._commit:
            self._commit.notify_all()
        if self.peers is not None:
            self.peers.stop()
        self._stop_follower()
        self.engine.close()

    def _start_follower(self) -> None:
        from engines.node.replication import Follower

        assert self.state.upstream is not None
        self.follower = Follower(self, self.state.upstream, archive=self.config.archive)
        self.follower.start()

    def _stop_follower(self) -> None:
        follower, self.follower = self.follower, None
        if follower is not None:
            follower.stop()

    def _attach_archiver(self) -> None:
        if self.config.archive is None:
            return
        from engines.backup import attach_archiver

        self.archive = attach_archiver(self.engine, self.config.archive)

    # ------------------------------------------------------------------ properties
    @property
    def role(self) -> str:
        return self.state.role

    @property
    def epoch(self) -> int:
        return self.engine.epoch

    @property
    def url(self) -> str:
        return self.config.url

    def believed_primary(self) -> str | None:
        if self.state.role == "primary":
            return self.url
        if self.state.role == "standby":
            return self.state.upstream
        return self.peers.primary_seen() if self.peers is not None else None

    @property
    def split_brain(self) -> bool:
        return bool(self.peers is not None and self.state.role == "primary" and self.peers.split_brain())

    # ------------------------------------------------------------------ data
    def check_client_write(self, key: bytes) -> None:
        if key.startswith(RESERVED_PREFIX):
            raise InvalidArgumentError(f"keys under {RESERVED_PREFIX.decode()!r} are reserved for drconsole")
        self._check_primary()

    def _check_primary(self) -> None:
        role = self.state.role
        if role == "primary":
            return
        if role == "standby":
            raise NodeRefusedError(f"node {self.config.name} is a standby and takes no writes; "
                                   f"the primary is {self.state.upstream}",
                                   hint=f"send writes to {self.state.upstream}")
        primary = self.believed_primary()
        raise NodeRefusedError(f"node {self.config.name} is fenced: {self.state.fence_reason}",
                               hint=f"send writes to the current primary{f' ({primary})' if primary else ''}; "
                                    "rejoin this node with `POST /admin/demote` {\"follow\": URL}")

    def put(self, key: bytes, value: bytes) -> int:
        self.check_client_write(key)
        return self._timed_write(lambda: self.engine.put(key, value))

    def delete(self, key: bytes) -> int:
        self.check_client_write(key)
        return self._timed_write(lambda: self.engine.delete(key))

    def _timed_write(self, write: Any) -> int:
        started = time.perf_counter()
        lsn: int = write()
        self.metrics.write_latency.observe(time.perf_counter() - started)
        self.note_committed(lsn)
        return lsn

    def get(self, key: bytes) -> bytes | None:
        started = time.perf_counter()
        value = self.engine.get(key)
        self.metrics.read_latency.observe(time.perf_counter() - started)
        return value

    def ready_probe(self) -> dict[str, Any]:
        """The reference's readiness check: a write and a read of a reserved key (primary only)."""
        if self.state.role != "primary":
            present = self.engine.get(READY_KEY)
            following = self.follower is not None and self.follower.connected
            return {"ready": self.state.role == "standby" and following, "probe": "read",
                    "read_ok": True, "role": self.state.role, "value_present": present is not None}
        stamp = str(time.time_ns()).encode()
        lsn = self._timed_write(lambda: self.engine.put(READY_KEY, stamp))
        back = self.get(READY_KEY)
        return {"ready": back == stamp, "probe": "write+read", "lsn": lsn, "role": "primary"}

    # ------------------------------------------------------------------ WAL shipping (primary side)
    def note_committed(self, lsn: int) -> None:
        with self._commit:
            if lsn > self.committed_lsn:
                self.committed_lsn = lsn
                self._commit.notify_all()

    def wait_for_commit(self, after: int, timeout: float) -> int:
        """Wait until a write after LSN ``after`` is durable (or ``timeout``); the committed LSN."""
        deadline = time.monotonic() + timeout
        with self._commit:
            while self.committed_lsn <= after and not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._commit.wait(left)
            return self.committed_lsn

    def check_follower(self, from_lsn: int, follower_epoch: int, name: str) -> None:
        """Refuse a standby whose log diverged from ours; learn of a higher epoch from it."""
        if follower_epoch > self.epoch:
            self.learn_epoch(follower_epoch, f"standby {name}")
        if self.state.role == "fenced":
            raise NodeRefusedError(f"node {self.config.name} is fenced ({self.state.fence_reason}) and ships no WAL",
                                   hint="follow the current primary")
        if from_lsn - 1 > self.committed_lsn:
            raise SafetyRefusal(f"standby {name} holds LSN {from_lsn - 1}, beyond this node's {self.committed_lsn}: "
                                "its history diverged", hint="reseed it from a backup of this node")
        if follower_epoch < self.epoch:
            shared = switch_lsn(self.state.history, follower_epoch)
            if shared is not None and from_lsn - 1 > shared:
                raise SafetyRefusal(
                    f"standby {name} (epoch {follower_epoch}) holds LSN {from_lsn - 1}, but the timelines split "
                    f"after LSN {shared} (epoch {self.epoch} began there): its last "
                    f"{from_lsn - 1 - shared} record(s) were never on this primary",
                    hint="reseed it from a backup of this node (its divergent data dir is kept aside)")

    def note_standby(self, name: str, applied_lsn: int, address: str) -> None:
        self.standbys[name] = {"name": name, "applied_lsn": applied_lsn, "address": address,
                               "last_seen": time.time()}

    # ------------------------------------------------------------------ roles
    def learn_epoch(self, epoch: int, source: str) -> bool:
        """Another node holds ``epoch``; a primary behind it fences itself. True if fenced now."""
        with self._lock:
            if epoch > self.state.known_epoch:
                self.state.known_epoch = epoch
                save_state(self.config.data_dir, self.state)
            if self.state.role == "primary" and epoch > self.epoch:
                self._fence_locked(f"{source} holds epoch {epoch}, newer than this node's {self.epoch}")
                return True
        return False

    def fence(self, reason: str, epoch: int | None = None) -> dict[str, Any]:
        self._stop_follower()  # outside the lock: the follower takes it to adopt a timeline
        with self._lock:
            if epoch is not None and epoch > self.state.known_epoch:
                self.state.known_epoch = epoch
            self._fence_locked(reason)
            return self.describe_role()

    def _fence_locked(self, reason: str) -> None:
        self.state.role = "fenced"
        self.state.fence_reason = reason
        self.engine.fence(reason)
        save_state(self.config.data_dir, self.state)

    def promote(self) -> dict[str, Any]:
        """Become the primary in a new epoch (persisted before the first write is taken)."""
        if self.state.role == "primary":
            return {**self.describe_role(), "changed": False}
        self._stop_follower()  # outside the lock: the follower takes it to adopt a timeline
        with self._lock:
            if self.state.role == "primary":
                return {**self.describe_role(), "changed": False}
            new_epoch = max(self.epoch, self.state.known_epoch) + 1
            if getattr(self.engine, "_fenced", False):
                # Fencing is in memory only: a reopen is the one way back to a writable engine.
                self.engine.close()
                self.engine = open_engine(self.config.data_dir, "rw")
                self.tail = WalTail(self.engine.wal_dir)
            persist_epoch(self.engine, new_epoch)
            self.state.history.append(TimelineEntry(epoch=new_epoch, start_lsn=self.engine.last_lsn))
            self.state.role = "primary"
            self.state.upstream = None
            self.state.fence_reason = None
            self.state.known_epoch = new_epoch
            save_state(self.config.data_dir, self.state)
            self.committed_lsn = self.engine.last_lsn
            self._attach_archiver()
            return {**self.describe_role(), "changed": True}

    def demote(self, follow: str) -> dict[str, Any]:
        """Become a standby of ``follow`` (a fenced old primary rejoining, or a planned switchover)."""
        follow = follow.rstrip("/")
        if not follow.startswith(("http://", "https://")):
            raise InvalidArgumentError(f"follow must be an http(s) URL, not {follow!r}")
        if follow == self.url:
            raise InvalidArgumentError("a node cannot follow itself")
        self._stop_follower()  # outside the lock: the follower takes it to adopt a timeline
        with self._lock:
            self.engine.archive_hook = None
            self.state.role = "standby"
            self.state.upstream = follow
            self.state.fence_reason = None
            save_state(self.config.data_dir, self.state)
            self._start_follower()
            return self.describe_role()

    def adopt_timeline(self, epoch: int, history: list[TimelineEntry]) -> None:
        """A standby takes its primary's epoch and history (so a later promotion continues them)."""
        with self._lock:
            changed = False
            if epoch > self.epoch:
                persist_epoch(self.engine, epoch)
                changed = True
            known = {(entry.epoch, entry.start_lsn) for entry in self.state.history}
            for entry in history:
                if (entry.epoch, entry.start_lsn) not in known:
                    self.state.history.append(entry)
                    changed = True
            if epoch > self.state.known_epoch:
                self.state.known_epoch = epoch
                changed = True
            if changed:
                self.state.history.sort(key=lambda entry: entry.epoch)
                save_state(self.config.data_dir, self.state)

    def describe_role(self) -> dict[str, Any]:
        return {"name": self.config.name, "url": self.url, "role": self.state.role, "epoch": self.epoch,
                "known_epoch": self.state.known_epoch, "upstream": self.state.upstream,
                "primary": self.believed_primary(), "fence_reason": self.state.fence_reason,
                "last_lsn": self.engine.last_lsn}

    # ------------------------------------------------------------------ reports
    def replication(self) -> dict[str, Any]:
        report: dict[str, Any] = {"role": self.state.role, "epoch": self.epoch, "upstream": self.state.upstream,
                                  "applied_lsn": self.engine.last_lsn, "primary_lsn": self.engine.last_lsn,
                                  "lag_records": 0, "lag_bytes": 0, "lag_seconds": 0.0,
                                  "split_brain": self.split_brain, "name": self.config.name}
        if self.follower is not None:
            report.update(self.follower.status())
        elif self.state.role != "primary":
            report.update({"primary_lsn": None, "lag_records": None, "lag_bytes": None, "lag_seconds": None})
        report["standbys"] = list(self.standbys.values())
        report["history"] = [entry.model_dump() for entry in self.state.history]
        return report

    def health(self) -> tuple[bool, dict[str, Any]]:
        stats = self.engine.stats()
        body = {**self.describe_role(), "status": "healthy", "backend": self.engine.backend,
                "split_brain": self.split_brain,
                "stats": {"total_keys": stats.total_keys, "disk_usage_bytes": stats.disk_usage_bytes,
                          "memory_usage_bytes": stats.memory_usage_bytes, "wal_bytes": stats.wal_bytes,
                          "last_lsn": stats.last_lsn},
                "uptime_seconds": round(time.time() - self.started_at, 3), "timestamp": time.time()}
        ok = True
        if self.state.role == "fenced":
            body["status"], ok = "fenced", False
        elif self.split_brain:
            body["status"] = "split-brain"
        return ok, body

    def metrics_values(self) -> dict[str, Any]:
        replication = self.replication()
        return {**replication, "last_lsn": self.engine.last_lsn, "keys": self.engine.stats().total_keys}

    def data_dir(self) -> Path:
        return self.config.data_dir
