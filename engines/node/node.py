"""One node: an open engine, its role in the cluster, and the transitions between roles.

HTTP lives in ``app.py``; this module is what the routes call. Roles:

    primary --(learns of a higher epoch)--> fenced --(demote --follow URL)--> standby
    standby --(promote: epoch + 1)--> primary

A primary takes client writes. A standby applies what its follower (``replication.py``) pulls
from its upstream and refuses client writes, naming the primary. A fenced node refuses writes at
the engine too (``Engine.fence``), so nothing in this process can write behind the new primary's
back; it still serves reads, and can be rejoined as a standby.

Two transitions swap the data dir under the running node (the engine is closed, the dir replaced,
a new engine opened, all under the node lock; a request caught in between gets 503):
* ``reseed``: a standby too far behind restores its repository's newest full backup
  (``reseed.py``; the old dir goes to quarantine via ``engines.backup.restore_backup``);
* ``rejoin``: an old primary with records the new primary never had exports them and moves its
  dir aside (``divergence.py``), then follows the new primary from an empty data dir.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from pathlib import Path
from typing import Any

from engines import create_engine, open_engine
from engines.backup import attach_archiver, restore_backup
from engines.backup.location import location_text
from engines.base import Engine
from engines.errors import ClosedError, CorruptionError, EngineError, InvalidArgumentError, NotFoundError, SafetyRefusal
from engines.fsutil import move_to_quarantine
from engines.keys import RESERVED_PREFIX, check_user_key
from engines.node.archive_timer import ArchiveTimer, BackupWatch
from engines.node.client import NodeClient
from engines.node.config import NodeConfig
from engines.node.divergence import RejoinPlan, diverged_folder, export_records, plan_rejoin, write_summary
from engines.node.errors import NodeRefusedError
from engines.node.handover import WriteHold, apply_rows
from engines.node.lag import CommitClock
from engines.node.metrics import NodeMetrics
from engines.node.peers import PeerMonitor
from engines.node.replication import Follower
from engines.node.reseed import ReseedReport, choose_backup
from engines.node.state import MAX_EPOCH, NodeState, TimelineEntry, load_state, persist_epoch, save_state, switch_lsn
from engines.node.vitals import NodeVitals
from engines.node.wal_tail import WalTail

__all__ = ["Node", "RESERVED_PREFIX", "READY_KEY"]

READY_KEY = RESERVED_PREFIX + b"ready"
log = logging.getLogger("drconsole.node")


class Node:
    """The engine a node serves, and its role. Thread-safe; blocking (call from worker threads)."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.metrics = NodeMetrics()
        self._lock = threading.RLock()
        self._commit = threading.Condition(threading.Lock())
        self.committed_lsn = 0
        self.commit_clock = CommitClock()
        self.backup_watch = BackupWatch()
        self.vitals = NodeVitals(self)
        self.engine = self._open_engine()
        self.committed_lsn = self.engine.last_lsn
        self.tail = WalTail(self.engine.wal_dir)
        self.state = self._saved_state()
        self.released = False  # the engine is closed for a recovery step (drain.py); see release_data_dir
        self.standbys: dict[str, dict[str, Any]] = {}
        self.follower: Any = None
        self.peers: Any = None
        self.archive: Any = None
        self.archive_timer: ArchiveTimer | None = None
        self.last_reseed: ReseedReport | None = None
        self.last_rejoin: dict[str, Any] | None = None
        self.write_hold = WriteHold()  # after a promotion: client writes wait for the salvage (handover.py)
        self.closed = False
        self.started_at = time.time()

    # ------------------------------------------------------------------ lifecycle
    @property
    def engine(self) -> Engine:
        return self._engine

    @engine.setter
    def engine(self, engine: Engine) -> None:
        # Every engine the node serves (reopened, reseeded, rejoined, reopened by the recovery
        # agent) reports the damage its background work meets.
        engine.corruption_hook = self.vitals.on_background_corruption
        self._engine = engine

    def _open_engine(self) -> Engine:
        config = self.config
        path = config.data_dir
        if not path.exists() or (path.is_dir() and not any(path.iterdir())):
            if config.engine is None:
                raise InvalidArgumentError(
                    f"data dir {path} does not exist", hint="pass --engine to create it, or check the path"
                )
            return self._create_engine(config.engine)
        return open_engine(path, "rw", backend=config.engine)

    def _saved_state(self) -> NodeState:
        """The role ``node.json`` records, reconciled with the open engine (and ``--follow``)."""
        config = self.config
        saved = load_state(config.data_dir)
        state = saved or NodeState(known_epoch=self.engine.epoch)
        state.known_epoch = max(state.known_epoch, self.engine.epoch)
        if config.follow:
            # The operator says follow: even an old primary rejoins so; the upstream refuses it if
            # its log diverged (check_follower).
            state.role = "standby"
            state.upstream = config.follow
        elif state.role == "primary" and state.known_epoch > self.engine.epoch:
            state.role = "fenced"
            state.fence_reason = f"epoch {state.known_epoch} exists elsewhere"
        if state.role == "fenced":
            self.engine.fence(state.fence_reason or "fenced")
        save_state(config.data_dir, state)
        return state

    def _create_engine(self, backend: str) -> Engine:
        options: dict[str, Any] = {}
        if self.config.wal_segment_bytes:
            options["wal_segment_bytes"] = self.config.wal_segment_bytes
        return create_engine(
            self.config.data_dir, backend, durability=self.config.durability, node_name=self.config.name, **options
        )

    def start(self) -> None:
        """Start the background work: following the upstream, polling peers, archiving.

        A released node (``release_data_dir``) starts nothing; ``reopen_data_dir`` starts it.
        """
        if self.released:
            return
        if self.state.role == "primary":
            self._attach_archiver()
        if self.state.role == "standby":
            self.engine.suspend_archiving("standby")
            self._start_follower()
        if self.config.archive_timeout > 0 and self.archive_timer is None:  # one timer across reopens
            self.archive_timer = ArchiveTimer(self, self.config.archive_timeout).start()
        if self.config.peers:
            self.peers = PeerMonitor(self, self.config.peers, self.config.peer_interval)
            self.peers.start()
        self.vitals.start()

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
        with self._commit:
            self._commit.notify_all()
        self.vitals.stop()
        if self.peers is not None:
            self.peers.stop()
        if self.archive_timer is not None:
            self.archive_timer.stop()
        self._stop_follower()
        with self._lock:  # waits for a reseed or rejoin swapping the data dir to finish
            self.engine.close()

    @property
    def recovering(self) -> dict[str, Any] | None:
        """Why and since when a playbook holds the data dir (``health.py``'s state); None when serving."""
        return self.vitals.tracker.recovering

    def release_data_dir(self, reason: str) -> None:
        """Enter ``recovering``, stop the background work and close the engine: a recovery step has the data dir.

        The HTTP side has drained first (``drain.NodeControl``). ``reopen_data_dir`` undoes it.
        """
        with self._lock:
            if self.closed:
                raise ClosedError(f"node {self.config.name} is shutting down")
            if self.released:
                return
            self.set_recovering(reason)
            self.released = True
        with self._commit:
            self._commit.notify_all()  # long polls of standbys end now, not after their wait
        peers, self.peers = self.peers, None
        if peers is not None:
            peers.stop()
        self._stop_follower()
        self.vitals.stop()
        with self._lock:
            self.engine.close()
            self.archive = None
        log.warning("node %s released its data dir: %s", self.config.name, reason)

    def reopen_data_dir(self) -> dict[str, Any]:
        """Open the engine again (its WAL replays), read the role back from ``node.json``, serve.

        Raises:
            EngineError: the data dir does not open; the node stays ``recovering`` (with the
                error) and serves nothing but the health routes and its extensions.
        """
        with self._lock:
            if not self.released:
                return {"reopened": False, "last_lsn": self.engine.last_lsn}
            clock = time.monotonic()
            try:
                if not self.config.data_dir.is_dir():
                    raise NotFoundError(
                        f"data dir {self.config.data_dir} is gone", hint="restore it (playbook restore), then reopen"
                    )
                self.engine = open_engine(self.config.data_dir, "rw", backend=self.config.engine)
            except EngineError as exc:
                recovering = self.vitals.tracker.recovering
                if recovering is not None:
                    recovering["error"] = str(exc)
                raise
            self.committed_lsn = self.engine.last_lsn
            self.tail = WalTail(self.engine.wal_dir)
            self.state = self._saved_state()
            self.released = False
            self.clear_recovering()
            seconds = time.monotonic() - clock
        self.start()
        log.warning(
            "node %s reopened its data dir in %.2f s (LSN %d, %s)",
            self.config.name,
            seconds,
            self.engine.last_lsn,
            self.state.role,
        )
        return {
            "reopened": True,
            "open_seconds": round(seconds, 3),
            "last_lsn": self.engine.last_lsn,
            "role": self.state.role,
        }

    def _start_follower(self) -> None:
        assert self.state.upstream is not None
        self.follower = Follower(
            self,
            self.state.upstream,
            archive=self.config.archive or self.config.backup_repo,
            backup_repo=self.config.backup_source,
            token=self.config.token,
        )
        self.follower.start()

    def _stop_follower(self) -> None:
        follower, self.follower = self.follower, None
        if follower is not None:
            follower.stop()

    def _attach_archiver(self) -> None:
        """A primary archives into ``--archive`` (recorded in the data dir), else the one recorded."""
        keeper = self.engine.archiving
        if self.config.wal_hold_max_bytes is not None:
            keeper.ceiling_bytes = self.config.wal_hold_max_bytes
        if keeper.suspended == "standby":
            keeper.resume()
        if self.config.archive is not None:
            self.archive = attach_archiver(self.engine, self.config.archive)

    @property
    def archive_repo(self) -> Path | None:
        """The repository this node's WAL goes to (``--archive`` or the one its data dir records)."""
        record = self.engine.marker.archive
        return self.config.archive or (Path(record.repo) if record is not None else None)

    @property
    def backup_repo(self) -> Path | None:
        """Where this node's full backups are (``--backup-repo``, ``--archive``, or the one recorded)."""
        return self.config.backup_source or self.archive_repo

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
        check_user_key(key)
        self._check_primary()
        self.write_hold.check()

    def _check_primary(self) -> None:
        role = self.state.role
        if role == "primary":
            return
        if role == "standby":
            raise NodeRefusedError(
                f"node {self.config.name} is a standby and takes no writes; the primary is {self.state.upstream}",
                hint=f"send writes to {self.state.upstream}",
            )
        primary = self.believed_primary()
        raise NodeRefusedError(
            f"node {self.config.name} is fenced: {self.state.fence_reason}",
            hint=f"send writes to the current primary{f' ({primary})' if primary else ''}; "
            'rejoin this node with `POST /admin/demote` {"follow": URL}',
        )

    def put(self, key: bytes, value: bytes) -> int:
        self.check_client_write(key)
        return self._timed_write(lambda: self.engine.put(key, value))

    def delete(self, key: bytes) -> int:
        self.check_client_write(key)
        return self._timed_write(lambda: self.engine.delete(key))

    def _timed_write(self, write: Any) -> int:
        self.vitals.check_serving()
        started = time.perf_counter()
        with self.vitals.watch():  # a COW write reads the pages it copies
            lsn: int = write()
        self.metrics.write_latency.observe(time.perf_counter() - started)
        self.note_committed(lsn)
        return lsn

    def get(self, key: bytes) -> bytes | None:
        self.vitals.check_serving()
        started = time.perf_counter()
        with self.vitals.watch():
            value = self.engine.get(key)
        self.metrics.read_latency.observe(time.perf_counter() - started)
        return value

    # ------------------------------------------------------------------ health (the recovery agent's handles)
    def set_recovering(self, reason: str) -> None:
        """Enter ``recovering``: /health and /ready answer 503, /kv 503 "recovering", the scrub stops
        reading the data dir (this returns once it has, within a read of 64 KiB or so).

        The caller (the recovery agent) drains requests in flight, closes and reopens the engine
        itself; assigning ``node.engine`` a reopened engine is enough for health to follow it.
        """
        self.vitals.set_recovering(reason)

    def clear_recovering(self) -> None:
        """Leave ``recovering``: the node serves again (with the engine it holds now)."""
        self.vitals.tracker.clear_recovering()

    def clear_corruption(self, reason: str) -> dict[str, Any] | None:
        """Leave ``corrupt`` after a repair verified clean; returns the record cleared (None: was not corrupt)."""
        record = self.vitals.tracker.clear(reason)
        return None if record is None else record.model_dump()

    def note_corruption(self, error: CorruptionError, found_by: str = "read") -> None:
        """Enter ``corrupt`` (an engine call outside the node's own paths met damaged bytes)."""
        self.vitals.tracker.note_error(error, found_by)

    def ready_probe(self) -> dict[str, Any]:
        """The reference's readiness check: a write and a read of a reserved key (primary only).

        A corrupt or recovering node is not ready, whatever the probe would say.
        """
        gate = self.vitals.ready_gate()
        if gate is not None:
            return gate
        if self.state.role != "primary":
            present = self.engine.get(READY_KEY)
            following = self.follower is not None and self.follower.connected
            return {
                "ready": self.state.role == "standby" and following,
                "probe": "read",
                "read_ok": True,
                "role": self.state.role,
                "value_present": present is not None,
            }
        held = self.write_hold.status()
        if held is not None:  # promoted, the salvage not applied yet: clients' writes would be refused
            return {"ready": False, "probe": "held", "role": "primary", "writes_held": held}
        stamp = str(time.time_ns()).encode()
        lsn = self._timed_write(lambda: self.engine.put(READY_KEY, stamp))
        back = self.get(READY_KEY)
        return {"ready": back == stamp, "probe": "write+read", "lsn": lsn, "role": "primary"}

    # ------------------------------------------------------------------ WAL shipping (primary side)
    def note_committed(self, lsn: int) -> None:
        with self._commit:
            if lsn > self.committed_lsn:
                self.committed_lsn = lsn
                self.commit_clock.note(lsn)
                self._commit.notify_all()

    def wait_for_commit(self, after: int, timeout: float) -> int:
        """Wait until a write after LSN ``after`` is durable (or ``timeout``); the committed LSN."""
        deadline = time.monotonic() + timeout
        with self._commit:
            while self.committed_lsn <= after and not self.closed and not self.released:
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
            raise NodeRefusedError(
                f"node {self.config.name} is fenced ({self.state.fence_reason}) and ships no WAL",
                hint="follow the current primary",
            )
        if from_lsn - 1 > self.committed_lsn:
            raise SafetyRefusal(
                f"standby {name} holds LSN {from_lsn - 1}, beyond this node's {self.committed_lsn}: "
                "its history diverged",
                hint="reseed it from a backup of this node",
            )
        if follower_epoch < self.epoch:
            shared = switch_lsn(self.state.history, follower_epoch)
            if shared is not None and from_lsn - 1 > shared:
                raise SafetyRefusal(
                    f"standby {name} (epoch {follower_epoch}) holds LSN {from_lsn - 1}, but the timelines split "
                    f"after LSN {shared} (epoch {self.epoch} began there): its last "
                    f"{from_lsn - 1 - shared} record(s) were never on this primary",
                    hint=f"rejoin it: `drconsole node rejoin URL --primary {self.url}` (its diverged records are "
                    "exported and its data dir kept in quarantine), or reseed it from a backup of this node",
                )

    def note_standby(self, name: str, applied_lsn: int, address: str) -> None:
        self.standbys[name] = {"name": name, "applied_lsn": applied_lsn, "address": address, "last_seen": time.time()}

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

    def promote(self, hold_writes_seconds: float | None = None) -> dict[str, Any]:
        """Become the primary in a new epoch (persisted before the first write is taken).

        ``hold_writes_seconds``: client writes wait (503) until ``release_writes`` or that deadline,
        so the old primary's unreplicated writes are applied first (``handover.py``).
        """
        if hold_writes_seconds:
            self.write_hold.hold(float(hold_writes_seconds), "promoted: the old primary's writes are being applied")
        if self.state.role == "primary":
            return {**self.describe_role(), "changed": False}
        self._stop_follower()  # outside the lock: the follower takes it to adopt a timeline
        with self._lock:
            if self.state.role == "primary":
                return {**self.describe_role(), "changed": False}
            new_epoch = max(self.epoch, self.state.known_epoch) + 1
            if new_epoch > MAX_EPOCH:
                raise SafetyRefusal(
                    f"refusing to promote: epoch {new_epoch} is past the largest one ({MAX_EPOCH})",
                    hint="a forced fence stored an absurd epoch; reseed the group from a backup",
                )
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

    def apply_salvage(self, rows: Any) -> dict[str, Any]:
        """Compare-and-set the old primary's rows (``handover.apply_rows``); a primary only, held or not."""
        with self._lock:
            self._check_primary()
            self.vitals.check_serving()
            outcomes, lsn = apply_rows(self.engine, rows)
        if lsn is not None:
            self.note_committed(lsn)
        return {"rows": outcomes, "lsn": lsn, "applied": sum(1 for row in outcomes if row["outcome"] == "applied")}

    def release_writes(self) -> dict[str, Any]:
        return {**self.write_hold.release(), "role": self.state.role, "epoch": self.epoch}

    def demote(self, follow: str) -> dict[str, Any]:
        """Become a standby of ``follow`` (a fenced old primary rejoining, or a planned switchover)."""
        follow = self._check_upstream_url(follow)
        self._stop_follower()  # outside the lock: the follower takes it to adopt a timeline
        with self._lock:
            self.engine.suspend_archiving("standby")
            self.state.role = "standby"
            self.state.upstream = follow
            self.state.fence_reason = None
            save_state(self.config.data_dir, self.state)
            self._start_follower()
            return self.describe_role()

    def rejoin(self, primary: str, *, dry_run: bool = False) -> dict[str, Any]:
        """Make this node a standby of ``primary``, setting aside what it wrote after the fork.

        A node whose records all lie on the primary's history is simply demoted. One with records
        past the fork (``divergence.py``) exports them to JSONL, moves its data dir to
        ``.quarantine/diverged-<epoch>-<ts>/`` and follows the primary from an empty data dir
        (which reseeds from a backup when one is at hand). ``dry_run``: only the plan.

        Raises:
            NodeUnreachableError: the primary cannot be asked for its history (nothing changed).
            NodeRefusedError: ``primary`` is not a primary.
            SafetyRefusal: no fork point can be found (``plan_rejoin``); nothing changed.
        """
        primary = self._check_upstream_url(primary)
        with NodeClient(primary, token=self.config.token, timeout=10.0) as client:
            report = client.replication()
        if report.get("role") != "primary":
            raise NodeRefusedError(
                f"{primary} is not a primary (it is a {report.get('role')}); not rejoining to it",
                hint="name the current primary with --primary",
            )
        history = [TimelineEntry(**entry) for entry in report.get("history", [])]
        with self._lock:
            plan = plan_rejoin(
                primary=primary,
                node_epoch=self.epoch,
                node_last_lsn=self.engine.last_lsn,
                primary_epoch=int(report["epoch"]),
                primary_last_lsn=int(report["applied_lsn"]),
                history=history,
                node_is_primary=self.state.role == "primary",
            )
        if dry_run:
            return {**self.describe_role(), "plan": plan.to_json(), "dry_run": True}
        if not plan.diverged:
            result = {**self.demote(primary), "plan": plan.to_json(), "diverged": False}
            self.last_rejoin = {"at": time.time(), "primary": primary, "diverged": False, "plan": plan.to_json()}
            return result
        self._stop_follower()  # outside the lock: the follower takes it to adopt a timeline
        with self._lock:
            outcome = self._set_diverged_aside(plan, history)
            self._start_follower()
            return {**self.describe_role(), "diverged": True, **outcome}

    def _set_diverged_aside(self, plan: RejoinPlan, history: list[TimelineEntry]) -> dict[str, Any]:
        data_dir = self.config.data_dir
        old = self.engine
        # Fenced first (and saved so): if anything below fails, the node stays a consistent fenced node.
        self._fence_locked(f"rejoining {plan.primary}: records past LSN {plan.fork_lsn} are being set aside")
        old.suspend_archiving("diverged")  # its diverged segments must never reach the shared WAL archive
        if old.last_lsn > plan.node_last_lsn:  # a client write landed between the plan and the fence
            plan = dataclasses.replace(plan, node_last_lsn=old.last_lsn, diverged_records=old.last_lsn - plan.fork_lsn)
        folder = diverged_folder(data_dir, plan.node_epoch)
        name = data_dir.name
        # Read the WAL before closing: closing flushes the store and recycles covered segments.
        export = export_records(old.wal_dir, plan.fork_lsn, plan.node_last_lsn, folder / f"{name}.diverged.jsonl")
        write_summary(folder / f"{name}.diverged.json", plan, export, folder / name)
        backend = old.backend
        old.close()
        try:
            moved = move_to_quarantine([data_dir], folder)[0]
        except EngineError:
            self.engine = open_engine(data_dir, "rw", backend=backend)  # nothing moved: serve it again, fenced
            self.engine.fence("a rejoin failed to move this data dir aside")
            raise
        self.engine = self._create_engine(backend)
        self.tail = WalTail(self.engine.wal_dir)
        self.committed_lsn = 0
        self.archive = None
        self.state.role = "standby"
        self.state.upstream = plan.primary
        self.state.fence_reason = None
        self.state.known_epoch = max(self.state.known_epoch, plan.primary_epoch)
        self.state.history = sorted(history, key=lambda entry: entry.epoch)
        save_state(data_dir, self.state)
        outcome = {
            "plan": plan.to_json(),
            "quarantine": str(moved),
            "export": export.to_json(),
            "summary": str(folder / f"{name}.diverged.json"),
        }
        self.last_rejoin = {"at": time.time(), "primary": plan.primary, "diverged": True, **outcome}
        self.vitals.tracker.clear(f"the data dir was set aside ({moved}) and replaced by an empty one")
        log.warning(
            "node %s diverged from %s after LSN %d: %d record(s) exported to %s, data dir moved to %s; "
            "following %s from an empty data dir",
            self.config.name,
            plan.primary,
            plan.fork_lsn,
            export.records,
            export.path,
            moved,
            plan.primary,
        )
        return outcome

    def reseed(self, repo: Path, *, reason: str, primary_lsn: int | None) -> ReseedReport:
        """Replace this standby's data dir with the newest useful full backup in ``repo``.

        Called by the follower (its own thread). The old data dir goes to quarantine
        (``restore_backup(replace=True)``); a failed restore leaves it in place and serving.

        Raises:
            EngineError: no useful backup (``choose_backup``), or the restore failed.
        """
        with self._lock:
            if self.state.role != "standby" or self.closed:
                raise NodeRefusedError(f"node {self.config.name} is a {self.state.role}: only a standby reseeds")
            applied = self.engine.last_lsn
            backend = self.engine.backend
            meta = choose_backup(
                Path(repo), applied_lsn=applied, backend=backend, primary_lsn=primary_lsn, history=self.state.history
            )
            report = ReseedReport(
                state="reseeding",
                reason=reason,
                repo=str(repo),
                backup_id=meta.backup_id,
                lsn=meta.lsn_end,
                previous_lsn=applied,
                started_at=time.time(),
            )
            self.last_reseed = report
            log.warning(
                "node %s reseeding from backup %s (LSN %d) in %s: %s",
                self.config.name,
                meta.backup_id,
                meta.lsn_end,
                repo,
                reason,
            )
            self.engine.suspend_archiving("reseeding")
            own_name = self.engine.marker.node_name  # its own data dir, though the backup is its primary's
            self.engine.close()
            try:
                result = restore_backup(
                    repo, self.config.data_dir, reference=meta.backup_id, replace=True, replace_node=own_name
                )
            except EngineError as exc:
                report.finish("failed", error=str(exc))
                log.error(
                    "node %s: reseed from %s failed, its data dir is unchanged: %s",
                    self.config.name,
                    meta.backup_id,
                    exc,
                )
                raise
            finally:
                # The backup's data dir, or the old one, untouched, when the restore failed.
                self.engine = open_engine(self.config.data_dir, "rw", backend=backend)
                self.tail = WalTail(self.engine.wal_dir)
                self.committed_lsn = self.engine.last_lsn
            save_state(self.config.data_dir, self.state)  # the backup's dir has no node.json of ours
            report.lsn = result.lsn
            report.quarantine = None if result.quarantine is None else str(result.quarantine)
            report.finish("reseeded")
            self.vitals.tracker.clear(
                f"the data dir was replaced by backup {meta.backup_id} (the old one is in {report.quarantine})"
            )
            log.warning(
                "node %s reseeded from backup %s: now at LSN %d (was %d); the old data dir is in %s",
                self.config.name,
                meta.backup_id,
                result.lsn,
                applied,
                report.quarantine,
            )
            return report

    def _check_upstream_url(self, url: str) -> str:
        url = url.rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise InvalidArgumentError(f"the primary must be an http(s) URL, not {url!r}")
        if url == self.url:
            raise InvalidArgumentError("a node cannot follow itself")
        return url

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
        return {
            "name": self.config.name,
            "url": self.url,
            "role": self.state.role,
            "epoch": self.epoch,
            "writes_held": self.write_hold.status(),
            "known_epoch": self.state.known_epoch,
            "upstream": self.state.upstream,
            "primary": self.believed_primary(),
            "fence_reason": self.state.fence_reason,
            "last_lsn": self.engine.last_lsn,
        }

    # ------------------------------------------------------------------ reports
    def replication(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "role": self.state.role,
            "epoch": self.epoch,
            "upstream": self.state.upstream,
            "applied_lsn": self.engine.last_lsn,
            "primary_lsn": self.engine.last_lsn,
            "lag_records": 0,
            "lag_bytes": 0,
            "lag_seconds": 0.0,
            "split_brain": self.split_brain,
            "name": self.config.name,
        }
        if self.follower is not None:
            report.update(self.follower.status())
        elif self.state.role != "primary":
            report.update({"primary_lsn": None, "lag_records": None, "lag_bytes": None, "lag_seconds": None})
        report["standbys"] = self._standby_lag()
        report["history"] = [entry.model_dump() for entry in self.state.history]
        report["backup_repo"] = None if self.config.backup_source is None else location_text(self.config.backup_source)
        report["reseed"] = None if self.last_reseed is None else self.last_reseed.to_json()
        report["rejoin"] = self.last_rejoin
        return report

    def _standby_lag(self) -> list[dict[str, Any]]:
        """Each standby as this node last saw it, with its lag: what a paused standby cannot report."""
        committed, now, wall = self.committed_lsn, time.monotonic(), time.time()
        standbys = []
        for standby in list(self.standbys.values()):
            records, seconds = self.commit_clock.lag(standby["applied_lsn"], committed, now)
            standbys.append(
                {
                    **standby,
                    "lag_records": records,
                    "lag_seconds": round(seconds, 6),
                    "last_seen_seconds_ago": round(wall - standby["last_seen"], 3),
                }
            )
        return standbys

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(HTTP 200?, the /health body): the states of ``vitals.py``."""
        code, body = self.vitals.health()
        return code == 200, body

    def metrics_values(self) -> dict[str, Any]:
        replication = self.replication()
        values = {**replication, "last_lsn": self.engine.last_lsn, **self.vitals.metrics()}
        if self.vitals.tracker.recovering is None:
            stats = self.engine.stats()
            values["keys"] = stats.total_keys
            if stats.archive is not None:
                values["archive_lag_seconds"] = stats.archive.lag_seconds
                values["wal_held_bytes"] = stats.archive.held_bytes
        ages, _error = self.backup_watch.ages(self.backup_repo)
        if ages is not None:
            now = time.time_ns()
            values["last_backup_age_seconds"] = ages.age_seconds(now)
            values["last_verified_backup_age_seconds"] = ages.verified_age_seconds(now)
        return values

    def data_dir(self) -> Path:
        return self.config.data_dir
