"""``LocalSource``: the fleet read from its data directories (engines opened read-only) and psutil.

Each tick opens every data dir with ``mode="ro"`` (which writes nothing: no lock file, nothing for
RocksDB either), reads ``stats()``, measures the volume and drconsole's own files on it, finds the
node's process by its ``--data-dir`` argument for its RSS, and reads the newest backup's metadata.
The blocking work runs in a thread so that the event loop (the console's) never waits on disk; a
data dir still being read when the next tick comes is reported as slow, not read twice.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psutil

from engines import open_engine
from engines.errors import EngineError
from engines.fsutil import QUARANTINE_DIR, tree_size
from engines.volume import VolumeUsage, volume_usage
from fleet.alerts import Thresholds
from fleet.nodes import NodeSpec
from fleet.snapshot import (
    BackupState,
    DiskComponents,
    DiskUsage,
    Health,
    MemoryUsage,
    NodeSnapshot,
    Replication,
    utc_now,
)
from fleet.source import Clock, Reachability, ReaderSource

__all__ = ["LocalSource", "LocalNodeReader", "ProcessFinder", "in_daemon_thread", "read_backup_state"]

T = TypeVar("T")
A = TypeVar("A")

SNAPSHOT_DIRS = ("snapshots", "checkpoints")


class ProcessFinder:
    """Finds the process serving a data dir (``--data-dir D`` on its command line), cached.

    Scanning every process costs a few milliseconds, so the scan runs at most every
    ``rescan_seconds``; a found process is re-checked each time it is asked for.
    """

    def __init__(self, rescan_seconds: float = 10.0) -> None:
        self.rescan_seconds = rescan_seconds
        self._by_dir: dict[str, int] = {}
        self._scanned_at = float("-inf")

    def rss_bytes(self, data_dir: Path) -> int | None:
        key = str(data_dir.resolve())
        pid = self._by_dir.get(key)
        if pid is not None:
            try:
                return int(psutil.Process(pid).memory_info().rss)
            except psutil.Error:
                self._by_dir.pop(key, None)
        if time.monotonic() - self._scanned_at >= self.rescan_seconds:
            self._scan()
            pid = self._by_dir.get(key)
            if pid is not None:
                try:
                    return int(psutil.Process(pid).memory_info().rss)
                except psutil.Error:
                    return None
        return None

    def _scan(self) -> None:
        self._scanned_at = time.monotonic()
        found: dict[str, int] = {}
        own = os.getpid()
        for process in psutil.process_iter(["pid", "cmdline"]):
            try:
                cmdline = process.info.get("cmdline") or []
            except psutil.Error:
                continue
            if process.info["pid"] == own:
                continue
            for index, argument in enumerate(cmdline):
                value = None
                if argument == "--data-dir" and index + 1 < len(cmdline):
                    value = cmdline[index + 1]
                elif argument.startswith("--data-dir="):
                    value = argument.split("=", 1)[1]
                if value:
                    try:
                        found[str(Path(value).resolve())] = int(process.info["pid"])
                    except OSError:
                        pass
        self._by_dir = found


def read_backup_state(repo: Path | None) -> BackupState:
    """The newest readable backup of ``repo`` (read-only: nothing is created or locked)."""
    if repo is None:
        return BackupState()
    from engines.backup.repository import Repository  # the backup package is heavy; only when asked

    try:
        entries = Repository.open(repo).backups()
    except EngineError as exc:
        return BackupState(repo=str(repo), error=exc.message)
    readable = [entry.metadata for entry in entries if entry.metadata is not None]
    if not readable:
        return BackupState(repo=str(repo), error="no backup yet")
    newest = readable[-1]
    verified = [meta for meta in readable if meta.verified]
    return BackupState(
        repo=str(repo),
        last_backup_at=datetime.fromtimestamp(newest.timestamp_ns / 1e9, UTC),
        last_backup_id=newest.backup_id,
        verified=newest.verified,
        last_verified_at=datetime.fromtimestamp(verified[-1].timestamp_ns / 1e9, UTC) if verified else None,
    )


def with_archive_state(backup: BackupState, data_dir: Path | None) -> BackupState:
    """``backup`` plus how the data dir's WAL reaches its archive, read from its files (changes nothing)."""
    if data_dir is None:
        return backup
    from engines.archiving import inspect_archive

    try:
        state = inspect_archive(data_dir)
    except (EngineError, OSError):
        return backup
    if state is None:
        return backup
    return backup.model_copy(
        update={
            "archive_state": state.state,
            "archive_lag_seconds": state.lag_seconds,
            "wal_held_bytes": state.held_bytes,
            "archive_error": state.error,
        }
    )


def _dir_size(path: Path) -> int:
    return tree_size(path) if path.is_dir() else 0


class LocalNodeReader:
    """Reads one node from its data directory."""

    def __init__(
        self, spec: NodeSpec, processes: ProcessFinder, *, memory: Callable[[], tuple[int, int]] | None = None
    ) -> None:
        if spec.data_dir is None:
            raise ValueError(f"node {spec.name!r} has no data_dir to read locally")
        self.spec = spec
        self.data_dir = Path(spec.data_dir)
        self.processes = processes
        self.memory = memory or _host_memory
        self.reachability = Reachability()
        self._pending: asyncio.Future[NodeSnapshot] | None = None

    async def read(self, now: datetime) -> NodeSnapshot:
        if self._pending is not None and not self._pending.done():
            return self.unreachable(now, "the previous read of the data dir is still running (slow disk?)")
        pending = in_daemon_thread(self.read_blocking, now, name=f"drconsole-read-{self.spec.name}")
        pending.add_done_callback(_retrieve)
        self._pending = pending
        # Shielded: when the tick's deadline cancels this read, the thread's result is still
        # collected, and the next tick sees that the read is still under way.
        return await asyncio.shield(pending)

    def unreachable(self, now: datetime, reason: str) -> NodeSnapshot:
        return self.reachability.failed(self.spec, now, reason, source="local", address=str(self.data_dir))

    async def aclose(self) -> None:
        return None

    def read_blocking(self, now: datetime) -> NodeSnapshot:
        started = time.perf_counter()
        try:
            with open_engine(self.data_dir, mode="ro") as engine:
                stats = engine.stats()
                epoch = engine.epoch
                marker_name = engine.marker.node_name
        except EngineError as exc:
            return self.unreachable(now, f"cannot open {self.data_dir}: {exc.message}")
        except OSError as exc:  # a race with a recovery moving files; next tick will tell
            return self.unreachable(now, f"cannot read {self.data_dir}: {exc.strerror or exc}")
        opened_ms = (time.perf_counter() - started) * 1000
        snapshots = sum(_dir_size(self.data_dir / name) for name in SNAPSHOT_DIRS)
        quarantine = _dir_size(self.data_dir / QUARANTINE_DIR)
        backup = with_archive_state(read_backup_state(self.spec.backup_repo), self.data_dir)
        backups_bytes = _dir_size(self.spec.backup_repo) if self.spec.backup_repo is not None else None
        try:
            volume: VolumeUsage | None = volume_usage(self.data_dir)
        except OSError:
            volume = None
        host_total, host_used = self.memory()
        details = stats.details
        cache = details.get("cache_bytes")
        reason = f"data dir opens read-only ({opened_ms:.0f} ms), {stats.total_keys} keys"
        if marker_name and marker_name != self.spec.name:
            reason += f" (marker names it {marker_name!r})"
        node = NodeSnapshot(
            name=self.spec.name,
            engine=stats.backend,
            role=self.spec.role,
            epoch=epoch,
            health=Health.OK,
            health_reason=reason,
            reachable=True,
            source="local",
            address=str(self.data_dir),
            last_lsn=stats.last_lsn,
            total_keys=stats.total_keys,
            disk=DiskUsage(
                volume_path=_mount_point(self.data_dir),
                volume_total_bytes=volume.total if volume else None,
                volume_used_bytes=volume.used if volume else None,
                volume_available_bytes=volume.available if volume else None,
                components=DiskComponents(
                    wal_bytes=stats.wal_bytes,
                    store_bytes=max(0, stats.disk_usage_bytes - stats.wal_bytes - snapshots),
                    snapshots_bytes=snapshots,
                    backups_bytes=backups_bytes,
                    quarantine_bytes=quarantine,
                ),
            ),
            memory=MemoryUsage(
                host_total_bytes=host_total,
                host_used_bytes=host_used,
                node_rss_bytes=self.processes.rss_bytes(self.data_dir),
                memtable_bytes=stats.memory_usage_bytes,
                cache_bytes=int(cache) if isinstance(cache, (int, float)) else None,
            ),
            replication=Replication(upstream=self.spec.upstream),
            backup=backup,
        )
        return self.reachability.ok(node)


def in_daemon_thread(function: Callable[[A], T], argument: A, *, name: str) -> asyncio.Future[T]:
    """Run ``function(argument)`` in a daemon thread; its result as a future of the running loop.

    Not the loop's default executor: its threads are joined when the interpreter exits, so one
    read stuck on a dead disk (NFS, a failing device) would keep the console from ever exiting.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def target() -> None:
        result: T | None = None
        try:
            result = function(argument)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine as is
            error: BaseException | None = exc
        else:
            error = None
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:
            pass  # the loop is closed: the console has exited and nobody waits for this read

    threading.Thread(target=target, name=name, daemon=True).start()
    return future


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Fetch an abandoned read's exception so that asyncio does not log it as never retrieved."""
    if not future.cancelled():
        future.exception()


def _host_memory() -> tuple[int, int]:
    memory = psutil.virtual_memory()
    return int(memory.total), int(memory.total - memory.available)


def _mount_point(path: Path) -> str:
    current = path.resolve()
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    return str(current)


class LocalSource(ReaderSource):
    """Every node read from its data directory."""

    def __init__(
        self,
        specs: Sequence[NodeSpec],
        *,
        thresholds: Thresholds | None = None,
        clock: Clock = utc_now,
        deadline_seconds: float = 2.0,
    ) -> None:
        processes = ProcessFinder()
        readers = [LocalNodeReader(spec, processes) for spec in specs]
        super().__init__(
            readers, specs, thresholds=thresholds, clock=clock, deadline_seconds=deadline_seconds, label="local"
        )
