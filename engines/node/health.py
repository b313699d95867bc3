"""A node's health states, what moves it between them, and the background scrub that feeds them.

    status       /health  /ready  when
    recovering   503      503     a playbook holds the data dir (``set_recovering``); /kv answers
                                  503 "recovering"
    corrupt      503      503     a read, a write, a compaction, a verify or the scrub met damaged
                                  bytes; the body's ``corruption`` says where; until cleared
    fenced       503      503     a higher epoch exists elsewhere (writes refused)
    split-brain  200      200     another primary holds this node's epoch (its peers say so)
    degraded     200      200     serving, with ``reason``/``reasons``: disk, memory, archive, stale backup
    healthy      200      200

The first that applies wins (a corrupt node being recovered says ``recovering``, and keeps its
``corruption`` in the body). A 503 on /health means "do not send this node traffic"; the body
always says why.

A corrupt node keeps serving the keys it can read: a read of a damaged block answers 500 with
the corruption error (a 503 would invite a retry that fails the same way; the 503 of /ready is
what takes the node out of a load balancer). The state is written to ``<data-dir>/corruption.json``,
so a restart is not a repair. It clears when:

* ``POST /admin/verify`` runs a full verify that finds nothing (``Node.verify_and_clear``);
* a complete scrub pass that began after the corruption was noted finds nothing;
* the recovery agent calls ``Node.clear_corruption(reason)`` after its reopen and verify;
* at start, re-checking the file the record names (every file when it names none) finds it
  sound, or no longer part of the data dir (quarantined by a repair, replaced by a restore).

Times in the body are ISO 8601 UTC (``2026-12-06T05:46:26.123456Z``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from pydantic import BaseModel

from engines.backup.metadata import iso_utc
from engines.errors import CorruptionError, EngineError
from engines.fsutil import atomic_write_text
from engines.node.archive_timer import BackupWatch
from engines.reports import Problem
from engines.scrub import ScrubPass, ScrubUnit
from engines.volume import volume_usage

__all__ = ["CORRUPTION_FILE", "CorruptionRecord", "HealthTracker", "DegradedProbe", "FOUND_BY"]

CORRUPTION_FILE = "corruption.json"
FOUND_BY = ("read", "compaction", "scrub", "verify")
DISK_THRESHOLD = 0.85  # the reference alert rules (fleet/alerts.py defaults)
MEMORY_THRESHOLD = 0.90
BACKUP_MAX_AGE_SECONDS = 26 * 3600  # a daily backup, plus slack
_MAX_FILES = 20
log = logging.getLogger("drconsole.node")


def _now_iso() -> str:
    return iso_utc(time.time_ns())


class CorruptionRecord(BaseModel):
    """Where the node first met damage, and what it met since (``files``, ``count``)."""

    file: str | None = None  # relative to the data dir
    offset: int | None = None
    detail: str
    found_by: str  # one of FOUND_BY
    since: str  # ISO 8601 UTC
    since_epoch: float
    page: int | None = None  # page-addressed files (data.cow): the page; ``offset`` is then its first byte
    count: int = 1
    last_at: str | None = None
    files: list[str] = []


Locate = Callable[[str | None, int | None], tuple[int | None, int | None]]


class HealthTracker:
    """The corrupt and recovering states of one node; thread-safe, and never holds the node lock.

    ``locate(file, offset)`` -> (byte offset, page): engines that address a file by pages (cow
    errors and verify problems give a page number as the offset) say so, and ``offset`` is kept
    in bytes for every backend.
    """

    def __init__(self, data_dir: Path, locate: Locate | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.locate = locate
        self._lock = threading.Lock()
        self.corruption: CorruptionRecord | None = self._load()
        self.recovering: dict[str, Any] | None = None
        self.last_cleared: dict[str, Any] | None = None

    # ------------------------------------------------------------------ corrupt
    def note(self, *, file: str | None, offset: int | None, detail: str, found_by: str) -> bool:
        """Record damage; True when the node has just become corrupt."""
        file = self._relative(file)
        page = None
        if self.locate is not None:
            offset, page = self.locate(file, offset)
        if page is not None:
            detail = detail.replace(" (offset = page number)", "")
        if file:
            detail = detail.removeprefix(f"{file}: ")  # the file is a field of its own
        with self._lock:
            record = self.corruption
            if record is None:
                now = time.time()
                record = CorruptionRecord(
                    file=file,
                    offset=offset,
                    page=page,
                    detail=detail,
                    found_by=found_by,
                    since=iso_utc(int(now * 1e9)),
                    since_epoch=now,
                    files=[file] if file else [],
                )
                self.corruption = record
                self._save(record)
                log.error(
                    "node data dir %s is corrupt (%s): %s%s",
                    self.data_dir,
                    found_by,
                    detail,
                    f" [{file} offset {offset}]" if file else "",
                )
                return True
            record.count += 1
            record.last_at = _now_iso()
            if file and file not in record.files and len(record.files) < _MAX_FILES:
                record.files.append(file)
                self._save(record)
            return False

    def note_error(self, error: CorruptionError, found_by: str) -> bool:
        return self.note(file=error.file, offset=error.offset, detail=error.message, found_by=found_by)

    def note_problem(self, problem: Problem, found_by: str) -> bool:
        return self.note(file=problem.file, offset=problem.offset, detail=problem.detail, found_by=found_by)

    def clear(self, reason: str) -> CorruptionRecord | None:
        """Leave the corrupt state (the damage was repaired or proved gone); the record cleared."""
        with self._lock:
            record, self.corruption = self.corruption, None
            if record is None:
                return None
            self.last_cleared = {"at": _now_iso(), "reason": reason, "was": record.model_dump()}
            try:
                (self.data_dir / CORRUPTION_FILE).unlink(missing_ok=True)
            except OSError as exc:
                log.error("cannot remove %s: %s", self.data_dir / CORRUPTION_FILE, exc)
            log.warning("node data dir %s: corruption cleared (%s)", self.data_dir, reason)
            return record

    def clear_after_pass(self, record: ScrubPass) -> bool:
        """A complete, clean scrub pass that began after the damage was noted clears it."""
        current = self.corruption
        if current is None or not record.complete or record.problems or record.started_at <= current.since_epoch:
            return False
        return (
            self.clear(f"a complete scrub pass found no damage ({record.checked} files, {record.bytes_read} bytes)")
            is not None
        )

    # ------------------------------------------------------------------ recovering
    def set_recovering(self, reason: str) -> None:
        self.recovering = {"reason": reason, "since": _now_iso(), "since_epoch": time.time()}

    def clear_recovering(self) -> None:
        self.recovering = None

    # ------------------------------------------------------------------ persistence
    def _relative(self, file: str | None) -> str | None:
        if not file:
            return None
        path = Path(file)
        if path.is_absolute():
            try:
                return str(path.relative_to(self.data_dir))
            except ValueError:
                return file
        return file

    def _load(self) -> CorruptionRecord | None:
        path = self.data_dir / CORRUPTION_FILE
        try:
            return CorruptionRecord.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            # Unreadable: the safe reading is that damage was recorded and not yet cleared.
            return CorruptionRecord(
                detail=f"{CORRUPTION_FILE} is unreadable ({exc}); re-checking every file",
                found_by="verify",
                since=_now_iso(),
                since_epoch=time.time(),
            )

    def _save(self, record: CorruptionRecord) -> None:
        try:
            atomic_write_text(self.data_dir / CORRUPTION_FILE, record.model_dump_json(indent=1) + "\n")
        except EngineError as exc:  # a full or read-only disk: the state still holds in memory
            log.error("cannot record the corruption in %s: %s", self.data_dir / CORRUPTION_FILE, exc)


def recheck_units(record: CorruptionRecord, units: list[ScrubUnit]) -> tuple[list[ScrubUnit], bool]:
    """The units to re-check for ``record`` at start, and whether its file is gone from the data dir."""
    named = {name for name in [record.file, *record.files] if name}
    if not named:
        return units, False
    chosen = [unit for unit in units if unit.file in named]
    return chosen, not chosen


class DegradedProbe:
    """Why a serving node is degraded: disk, memory, archive, stale backup (cheap enough per /health)."""

    def __init__(self, data_dir: Path, repo: Callable[[], Path | None], watch: BackupWatch) -> None:
        self.data_dir = data_dir
        self.repo = repo  # asked each time: the data dir may record its repository while the node runs
        self.watch = watch

    def reasons(self, archive_error: str | None) -> list[str]:
        found = []
        try:
            ratio = volume_usage(self.data_dir).ratio
            if ratio > DISK_THRESHOLD:
                found.append(f"disk {ratio * 100:.0f} % used (threshold {DISK_THRESHOLD * 100:.0f} %)")
        except OSError as exc:
            found.append(f"disk: cannot read the usage of {self.data_dir}: {exc}")
        memory = psutil.virtual_memory().percent / 100.0
        if memory > MEMORY_THRESHOLD:
            found.append(f"memory {memory * 100:.0f} % used (threshold {MEMORY_THRESHOLD * 100:.0f} %)")
        if archive_error:
            found.append(f"archive lag: {archive_error}")
        backup = self.backup()
        if backup is not None and (backup.get("age_seconds") or 0) > BACKUP_MAX_AGE_SECONDS:
            found.append(
                f"stale backup: the newest full backup is {backup['age_seconds'] / 3600:.0f} h old "
                f"(threshold {BACKUP_MAX_AGE_SECONDS // 3600} h)"
            )
        return found

    def volume(self) -> dict[str, Any]:
        """The data dir's volume and the host's memory in bytes (``/health``'s ``disk`` and ``memory``):
        a console shows "120G/200G", and a trend of used bytes gives a time-to-full."""
        found: dict[str, Any] = {}
        try:
            usage = volume_usage(self.data_dir)
        except OSError:
            pass
        else:
            found["disk"] = {
                "path": str(self.data_dir),
                "total_bytes": usage.total,
                "used_bytes": usage.used,
                "available_bytes": usage.available,
            }
        memory = psutil.virtual_memory()
        found["memory"] = {
            "host_total_bytes": memory.total,
            "host_used_bytes": memory.total - memory.available,
            "rss_bytes": psutil.Process().memory_info().rss,
        }
        return found

    def backup(self) -> dict[str, Any] | None:
        """The newest full and verified backup of the node's repository (``BackupWatch`` caches it)."""
        return self.watch.report(self.repo())
