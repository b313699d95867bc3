"""What a running node says about its own health: ``/health``, ``/ready``, ``/primary``, ``/replica``.

``NodeVitals`` joins the node's role with its health states (``health.py``): it notes every
corruption error the node's engine calls meet, runs the background scrub, re-checks a corruption
recorded before a restart, and builds the answers of the health routes. The routes
(``health_routes.py``) and ``Node`` call it; it never holds the node lock while it reads files.

``/primary`` answers 200 only on a primary that is not fenced, not recovering and not in a split
brain (Patroni's convention, for HAProxy's ``option httpchk``). A corrupt primary still answers
200: it is the only node taking writes, and most keys still serve; the responder fails over. A
``/replica`` answers 200 on a standby that is following its upstream, is neither corrupt nor
recovering, and (``?lag=16MB``, or bytes) is no further behind than the ceiling.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from engines.errors import CorruptionError, EngineError
from engines.node.errors import NodeBadRequestError, NodeError
from engines.node.health import DegradedProbe, HealthTracker, recheck_units
from engines.reports import Problem
from engines.scrub import Scrubber, ScrubPass

if TYPE_CHECKING:
    from engines.node.node import Node

__all__ = ["NodeVitals", "NodeRecoveringError", "parse_size"]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "kib": 2**10,
    "m": 10**6,
    "mb": 10**6,
    "mib": 2**20,
    "g": 10**9,
    "gb": 10**9,
    "gib": 2**30,
    "t": 10**12,
    "tb": 10**12,
    "tib": 2**40,
}


class NodeRecoveringError(NodeError):
    """A playbook holds the data dir: the node answers 503 "recovering" until it is done."""

    exit_code = 3


def parse_size(text: str) -> int:
    """``16MB`` (Patroni's spelling), ``1048576``, ``64KiB`` -> bytes; NodeBadRequestError otherwise."""
    match = _SIZE.match(text)
    unit = (match.group(2) or "").lower() if match else ""
    if match is None or unit not in _UNITS:
        raise NodeBadRequestError(f"lag must be a size such as 16MB or 1048576, not {text!r}")
    return int(float(match.group(1)) * _UNITS[unit])


class NodeVitals:
    def __init__(self, node: Node) -> None:
        self.node = node
        config = node.config
        self.tracker = HealthTracker(config.data_dir, locate=self._locate)
        self.degraded = DegradedProbe(config.data_dir, lambda: node.backup_repo, node.backup_watch)
        self.scrubber: Scrubber | None = None
        self.recheck: dict[str, Any] | None = None
        self._scrubbed_engine: Any = None  # the engine whose files the running pass reads

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        config = self.node.config
        self._scrubbed_engine = None
        self.scrubber = Scrubber(
            self._units,
            interval=config.scrub_interval,
            rate=config.scrub_rate,
            paused=self._paused,
            name=config.name,
            on_pass=self._after_pass,
            on_problem=self._on_problem,
        ).start()
        if self.tracker.corruption is not None:
            threading.Thread(target=self._recheck, name=f"recheck-{config.name}", daemon=True).start()

    def stop(self) -> None:
        if self.scrubber is not None:
            self.scrubber.stop()

    def _locate(self, file: str | None, offset: int | None) -> tuple[int | None, int | None]:
        """(byte offset, page) of a place an engine named: a COW file's offsets are page numbers."""
        page_size = getattr(self.node.engine, "page_size", None)
        if offset is not None and isinstance(page_size, int) and file is not None and file.endswith(".cow"):
            return offset * page_size, offset
        return offset, None

    def _on_problem(self, problem: Problem) -> None:
        self.tracker.note_problem(problem, "scrub")

    def _after_pass(self, record: ScrubPass) -> None:
        self._scrubbed_engine = None  # between passes no engine is being read: a swap pauses nothing
        self.tracker.clear_after_pass(record)

    def _units(self) -> list[Any]:
        engine = self._scrubbed_engine = self.node.engine
        return engine.scrub_units()

    def _paused(self) -> bool:
        """No scrub while a playbook holds the data dir, once the node closes, or once the engine the
        pass began with was swapped (a reseed or a rejoin replaced the data dir: a table number may
        now name another file)."""
        swapped = self._scrubbed_engine is not None and self._scrubbed_engine is not self.node.engine
        return self.tracker.recovering is not None or self.node.closed or swapped

    def set_recovering(self, reason: str, *, timeout: float = 10.0) -> bool:
        """Enter ``recovering`` and wait until the scrub has stopped reading the data dir (True) or ``timeout``."""
        self.tracker.set_recovering(reason)
        return self.scrubber is None or self.scrubber.wait_idle(timeout)

    def _recheck(self) -> None:
        """A corruption recorded before this start: is the damage still there?"""
        record = self.tracker.corruption
        if record is None:
            return
        self.recheck = {"state": "running", "started_at": time.time()}
        try:
            units, gone = recheck_units(record, self._units())
            if gone:
                self.tracker.clear(
                    f"re-checked at start: {', '.join(record.files or [str(record.file)])} "
                    "no longer part of the data dir"
                )
                self.recheck = {"state": "cleared", "reason": "file gone"}
                return
            scrub = Scrubber(
                lambda: units, interval=0, rate=0, paused=self._paused, name="recheck", on_problem=lambda problem: None
            )
            result = scrub.run_pass()
            self._scrubbed_engine = None
            if result.complete and not result.problems:
                self.tracker.clear(f"re-checked at start: {', '.join(unit.file for unit in units)} sound")
            self.recheck = {"state": "done", "complete": result.complete, "problems": len(result.problems)}
        except (EngineError, OSError) as exc:
            self.recheck = {"state": "failed", "error": str(exc)}

    # ------------------------------------------------------------------ noting damage
    @contextmanager
    def watch(self, found_by: str = "read") -> Iterator[None]:
        """Run an engine call; a corruption error it raises makes the node corrupt (and is re-raised)."""
        try:
            yield
        except CorruptionError as exc:
            self.tracker.note_error(exc, found_by)
            raise

    def on_background_corruption(self, error: CorruptionError, found_by: str) -> None:
        self.tracker.note_error(error, found_by)

    def check_serving(self) -> None:
        recovering = self.tracker.recovering
        if recovering is not None:
            raise NodeRecoveringError(
                f"node {self.node.config.name} is recovering: {recovering['reason']}",
                hint="retry in a moment, or use another node",
            )

    def verify_and_clear(self) -> dict[str, Any]:
        """A full verify of the open engine; a clean one clears the corrupt state (POST /admin/verify)."""
        self.check_serving()
        report = self.node.engine.verify()
        cleared = None
        if report.ok:
            record = self.tracker.clear("a full verify through the admin API found no damage")
            cleared = None if record is None else record.model_dump()
        else:
            for problem in report.problems:
                self.tracker.note_problem(problem, "verify")
        return {"verify": report.model_dump(), "cleared": cleared, "status": self.status()[0]}

    def scrub_now(self, rate: float | None = None) -> dict[str, Any]:
        """One scrub pass now, in the caller's thread (POST /admin/scrub); waits for a running one."""
        self.check_serving()
        scrubber = self.scrubber
        if scrubber is None:
            raise NodeBadRequestError("the node has not started yet")
        record = scrubber.run_pass(rate)
        return {"pass": record.to_json(), "status": self.status()[0]}

    # ------------------------------------------------------------------ answers
    def status(self) -> tuple[str, int, str]:
        """(status, HTTP status of /health, reason) by the precedence of ``health.py``."""
        node = self.node
        recovering, corruption = self.tracker.recovering, self.tracker.corruption
        if recovering is not None:
            return "recovering", 503, f"recovering: {recovering['reason']}"
        if corruption is not None:
            where = f"{corruption.file}" + (f" offset {corruption.offset}" if corruption.offset is not None else "")
            return (
                "corrupt",
                503,
                f"corrupt ({corruption.found_by}): {where + ': ' if corruption.file else ''}{corruption.detail}",
            )
        if node.state.role == "fenced":
            return "fenced", 503, f"fenced: {node.state.fence_reason}"
        if node.split_brain:
            return "split-brain", 200, "split brain: another primary holds this node's epoch"
        reasons = self.degraded.reasons(node.engine.archive_error)
        if reasons:
            return "degraded", 200, "; ".join(reasons)
        return "healthy", 200, ""

    def health(self) -> tuple[int, dict[str, Any]]:
        node = self.node
        status, code, reason = self.status()
        body: dict[str, Any] = {
            **node.describe_role(),
            "status": status,
            "backend": node.engine.backend,
            "split_brain": node.split_brain,
            "uptime_seconds": round(time.time() - node.started_at, 3),
            "timestamp": time.time(),
        }
        if reason:
            body["reason"] = reason
        if status == "degraded":
            body["reasons"] = reason.split("; ")
        corruption = self.tracker.corruption
        body["corruption"] = None if corruption is None else corruption.model_dump(exclude={"since_epoch"})
        body["recovering"] = self.tracker.recovering
        if self.tracker.last_cleared is not None:
            body["corruption_cleared"] = self.tracker.last_cleared
        if self.recheck is not None:
            body["corruption_recheck"] = self.recheck
        if self.scrubber is not None:
            body["scrub"] = self.scrubber.status()
        backup = self.degraded.backup()
        if backup is not None:
            body["backup"] = backup
        body.update(self.degraded.volume())
        if self.tracker.recovering is None:
            stats = node.engine.stats()
            # How the WAL reaches the archive: its state, why it fails, how much is held.
            body["archive"] = None if stats.archive is None else stats.archive.to_json()
            body["stats"] = {
                "total_keys": stats.total_keys,
                "disk_usage_bytes": stats.disk_usage_bytes,
                "memory_usage_bytes": stats.memory_usage_bytes,
                "wal_bytes": stats.wal_bytes,
                "last_lsn": stats.last_lsn,
            }
        return code, body

    def primary(self) -> tuple[int, dict[str, Any]]:
        node = self.node
        status, _code, reason = self.status()
        why = None
        if node.state.role != "primary":
            why = f"role {node.state.role}"
        elif status in ("recovering", "split-brain"):
            why = reason
        body = {"role": node.state.role, "epoch": node.epoch, "status": status, "primary": why is None}
        if why is not None:
            body["reason"] = why
        return (200 if why is None else 503), body

    def replica(self, lag: str | None) -> tuple[int, dict[str, Any]]:
        node = self.node
        status, _code, reason = self.status()
        follower = node.follower
        lag_bytes = None if follower is None else follower.lag_bytes
        why = None
        if node.state.role != "standby":
            why = f"role {node.state.role}"
        elif status in ("recovering", "corrupt"):
            why = reason
        elif follower is None or not follower.connected:
            why = "not streaming from its upstream"
        elif lag is not None:
            ceiling = parse_size(lag)
            if lag_bytes is None or lag_bytes > ceiling:
                why = f"replication lag {lag_bytes} bytes exceeds the ceiling {ceiling}"
        body = {
            "role": node.state.role,
            "status": status,
            "replica": why is None,
            "lag_bytes": lag_bytes,
            "upstream": node.state.upstream,
        }
        if why is not None:
            body["reason"] = why
        return (200 if why is None else 503), body

    def ready_gate(self) -> dict[str, Any] | None:
        """The /ready answer of a node that must not take traffic whatever its probe says; None otherwise."""
        status, _code, reason = self.status()
        if status in ("recovering", "corrupt"):
            return {"ready": False, "status": status, "reason": reason, "role": self.node.state.role}
        return None

    def metrics(self) -> dict[str, Any]:
        scrubber = self.scrubber
        last = scrubber.last_pass if scrubber is not None else None
        return {
            "corruption_detected": self.tracker.corruption is not None,
            "recovering": self.tracker.recovering is not None,
            "scrub_bytes_total": 0 if scrubber is None else scrubber.bytes_total,
            "scrub_passes": 0 if scrubber is None else scrubber.passes,
            "scrub_last_complete": last.finished_at if last is not None and last.complete else None,
        }
