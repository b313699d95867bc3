"""A node's time bound on archiving (``--archive-timeout``) and what it reports about its backups.

PostgreSQL's ``archive_timeout`` is the model: a segment that got its first write ``timeout``
seconds ago is sealed and archived even if it is far from full, so a point-in-time recovery loses
at most that much. Segments sealed early (full ones) are archived at the next tick; a failed
attempt is retried every few seconds (the WAL is held meanwhile, see ``engines/archiving.py``).
An idle node still records, once per timeout, that its log ends where it ends, which keeps "now
minus the timeout" inside the recoverable window without a write.

``BackupWatch`` reads the ages of the newest full and newest verified backup from the repository's
metadata, at most every ``_BACKUP_CHECK_SECONDS``: what ``/metrics`` and ``/health`` show.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engines.backup.listing import BackupAges, backup_ages
from engines.backup.location import location_text
from engines.backup.repository import TIERS
from engines.errors import EngineError

if TYPE_CHECKING:
    from engines.node.node import Node

__all__ = ["ArchiveTimer", "BackupWatch", "DEFAULT_ARCHIVE_TIMEOUT"]

DEFAULT_ARCHIVE_TIMEOUT = 60.0
_RETRY_SECONDS = 5.0
_BACKUP_CHECK_SECONDS = 30.0
log = logging.getLogger("drconsole.node")


class ArchiveTimer:
    """Seals and archives the node's open WAL segment once its first write is ``timeout`` s old."""

    def __init__(self, node: Node, timeout: float) -> None:
        self.node = node
        self.timeout = timeout
        self.tick = max(0.05, min(1.0, timeout / 4))
        self.sealed_total = 0
        self._last_seal = time.monotonic()
        self._last_failure = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"archive-timer-{node.config.name}", daemon=True)

    def start(self) -> ArchiveTimer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.run_once()
            except EngineError as exc:  # the engine closed under us (a reseed swapping the dir)
                log.debug("archive timer of %s: %s", self.node.config.name, exc)
            except Exception:  # noqa: BLE001 - the timer must outlive any one failure
                log.exception("archive timer of %s failed", self.node.config.name)

    def run_once(self, now: float | None = None) -> None:
        engine = self.node.engine
        keeper = engine.archiving
        if not keeper.active or self.node.closed:
            return
        now = time.monotonic() if now is None else now
        if keeper.error is not None and now - self._last_failure < min(_RETRY_SECONDS, self.timeout):
            return
        started = engine.open_segment_started_ns
        due = (started is not None and (time.time_ns() - started) / 1e9 >= self.timeout) or (
            started is None and now - self._last_seal >= self.timeout
        )
        if due:
            engine.archive_now(seal=True)
            self._last_seal = now
            self.sealed_total += started is not None
        elif keeper.held_segments or keeper.error is not None:
            engine.archive_now()
        if keeper.error is not None:
            if not self._last_failure:
                log.warning("node %s: %s", self.node.config.name, keeper.error)
            self._last_failure = now
        elif self._last_failure:
            log.warning("node %s: archiving into %s works again", self.node.config.name, keeper.repo)
            self._last_failure = 0.0


class BackupWatch:
    """The newest full and verified backup of a repository, re-read when a backup lands in a tier or 30 s passed."""

    def __init__(self) -> None:
        self._cache: tuple[float, tuple[Any, ...], BackupAges | None, str | None] = (0.0, (), None, None)
        self._lock = threading.Lock()

    def ages(self, repo: Path | None) -> tuple[BackupAges | None, str | None]:
        """(ages, why unknown) of ``repo``; (None, None) when the node has no repository."""
        if repo is None:
            return None, None
        key = (repo, *(_mtime(repo / tier) for tier in TIERS))  # a published backup renames into a tier
        with self._lock:
            checked, cached_key, ages, error = self._cache
            if cached_key == key and time.monotonic() - checked < _BACKUP_CHECK_SECONDS:
                return ages, error
            try:
                ages, error = backup_ages(repo), None
            except (EngineError, OSError) as exc:
                ages, error = None, exc.message if isinstance(exc, EngineError) else str(exc)
            self._cache = (time.monotonic(), key, ages, error)
            return ages, error

    def report(self, repo: Path | None) -> dict[str, Any] | None:
        """The ``backup`` object of ``/health``."""
        ages, error = self.ages(repo)
        if repo is None:
            return None
        shown = location_text(repo)  # an sftp:// URL as written, not folded by Path
        if ages is None:
            return {"repo": shown, "error": error}
        return {"repo": shown, **ages.to_json(time.time_ns())}


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0
