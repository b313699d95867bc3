"""The background scrub: every cold file of a data dir read back and checked, throttled in bytes/s.

ZFS scrub, Ceph deep-scrub and RocksDB's ``VerifyChecksum`` all do this: damage that no read
touches (a flipped byte in a table nobody asked for since it was written) is found by reading
everything on a schedule, slowly enough that the foreground does not notice.

One mechanism serves every backend. A backend says what can be checked through
``Engine.scrub_units()``: one ``ScrubUnit`` per file (an SSTable, ``data.cow``, a RocksDB table,
a sealed WAL segment). A unit's check reads its file from disk (never from a cache), adds what it
finds to a ``VerifyReport`` and calls ``pace(n)`` after every ``n`` bytes it read; ``pace``
sleeps to keep the pass under its rate, in steps of about 50 ms, so the reading is spread
between foreground requests rather than done in one burst per file.

The ``Scrubber`` runs one pass every ``interval`` seconds (start to start; a pass that takes
longer is followed at once by the next). A damaged byte is therefore found within two intervals
when a pass fits in one (``bytes / rate <= interval``); ``status()["behind"]`` says when it does not.
Problems are reported only for files still live when the check ends: a table that compaction
retired meanwhile, or a segment that was recycled, proves nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engines.errors import CorruptionError, EngineError
from engines.reports import Problem, VerifyReport
from engines.wal import list_segments
from engines.wal.scan import ScanAction, SegmentProblem, scan_segments

__all__ = [
    "Pace",
    "ScrubUnit",
    "ScrubPass",
    "Scrubber",
    "ScrubStopped",
    "Pacer",
    "wal_units",
    "DEFAULT_INTERVAL_SECONDS",
    "DEFAULT_RATE_BYTES",
]

DEFAULT_INTERVAL_SECONDS = 3600.0
# bench/scrub_bench.py (scrub-on and scrub-off windows interleaved in one loaded lsm node, 16
# clients, two shared cores): at 4 MiB/s throughput fell 1.3 % and p99 write latency rose 1.8 %
# (goal: at most 10 %); one hour's interval then covers about 14 GiB.
DEFAULT_RATE_BYTES = 4 * 2**20
_FIRST_PASS_DELAY = 60.0  # a node restarted every few minutes must still be scrubbed
_BURST_SECONDS = 0.05  # how far ahead of the rate a pass may run after waiting for a unit
# Sleep in steps of at least this much, not after every 4 KiB block: each wake-up of the scrub thread
# asks for the GIL, and a thousand a second made the node's request threads wait for it (p99).
_MIN_SLEEP_SECONDS = 0.05
log = logging.getLogger("drconsole.scrub")

Pace = Callable[[int], None]


class ScrubStopped(BaseException):
    """The scrub was asked to stop (the node closes, drains or swaps its data dir): the pass ends where it is.

    A ``BaseException``, as ``GeneratorExit`` is: it must pass through the ``except Exception`` with
    which backends map third-party errors (``rocks_call``), not become an I/O error of the file.
    """


@dataclass(frozen=True)
class ScrubUnit:
    """One file a scrub can check on its own.

    Attributes:
        file: the file, relative to the data dir (as in verify reports).
        size: its size in bytes (for the plan and the progress).
        check: reads the file, adds problems to the report and calls ``pace(n)`` as it reads.
            It raises ``CorruptionError`` (a problem too) or another ``EngineError``/``OSError``
            (the pass is interrupted: the engine closed, the file went away).
        live: whether the file is still part of the data dir; problems of a dead one are dropped.
    """

    file: str
    size: int
    check: Callable[[VerifyReport, Pace], None]
    live: Callable[[], bool] = lambda: True


@dataclass
class ScrubPass:
    """What one pass read and found. Times are epoch seconds."""

    started_at: float
    finished_at: float | None = None
    bytes_read: int = 0
    units: int = 0
    checked: int = 0
    skipped: int = 0  # files gone before or while they were read
    problems: list[Problem] = field(default_factory=list)
    complete: bool = False
    interrupted: str | None = None

    def to_json(self) -> dict[str, Any]:
        duration = None if self.finished_at is None else round(self.finished_at - self.started_at, 3)
        return {
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_seconds": duration,
            "bytes_read": self.bytes_read,
            "units": self.units,
            "checked": self.checked,
            "skipped": self.skipped,
            "problems": [problem.model_dump() for problem in self.problems[:20]],
            "problem_count": len(self.problems),
            "complete": self.complete,
            "interrupted": self.interrupted,
        }


class Pacer:
    """Sleeps after each read so that bytes read stay under ``rate`` per second (0: no limit).

    Raises ``ScrubStopped`` at the next read once ``stop`` is set or ``halt()`` answers True.
    """

    def __init__(
        self,
        rate: float,
        stop: threading.Event,
        clock: Callable[[], float] = time.monotonic,
        halt: Callable[[], bool] = lambda: False,
    ) -> None:
        self.rate = rate
        self.stop = stop
        self.halt = halt
        self.clock = clock
        self.bytes = 0
        self._due = clock()

    def __call__(self, nbytes: int) -> None:
        if self.stop.is_set() or self.halt():
            raise ScrubStopped
        self.bytes += nbytes
        if self.rate <= 0:
            return
        now = self.clock()
        # Never more than a short burst ahead: time spent idle between units is not credit.
        self._due = max(self._due, now - _BURST_SECONDS) + nbytes / self.rate
        delay = self._due - now
        if delay >= _MIN_SLEEP_SECONDS:
            if self.stop.wait(delay):
                raise ScrubStopped
        else:
            time.sleep(0)  # let a request thread waiting for the GIL run before the next block


class Scrubber:
    """Runs scrub passes over ``units()`` in a daemon thread; reports problems as it finds them.

    Args:
        units: the units of the data dir as it is now (called at the start of every pass).
        interval: seconds from the start of one pass to the start of the next (0: no thread).
        rate: bytes per second (0: unthrottled).
        on_problem: called with each problem of a live file, as soon as its unit is checked.
        on_pass: called with every finished pass (complete or not).
        paused: while it answers True no pass starts, and a unit checked while it turned True
            reports nothing (the data dir is being recovered under the scrub).
    """

    def __init__(
        self,
        units: Callable[[], Sequence[ScrubUnit]],
        *,
        interval: float,
        rate: float,
        on_problem: Callable[[Problem], None],
        on_pass: Callable[[ScrubPass], None] | None = None,
        paused: Callable[[], bool] = lambda: False,
        name: str = "scrub",
        first_delay: float | None = None,
    ) -> None:
        self.units = units
        self.interval = interval
        self.rate = rate
        self.on_problem = on_problem
        self.on_pass = on_pass
        self.paused = paused
        self.name = name
        self.first_delay = min(interval, _FIRST_PASS_DELAY) if first_delay is None else first_delay
        self.last_pass: ScrubPass | None = None
        self.current: ScrubPass | None = None
        self.current_file: str | None = None
        self.passes = 0
        self._bytes_done = 0  # by finished passes
        self._pacer: Pacer | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._pass_lock = threading.Lock()
        self._unit_lock = threading.Lock()  # held while a unit reads its file (see wait_idle)
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Scrubber:
        if self.interval > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=f"scrub-{self.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no unit is reading (after ``paused()`` turned True, the next read stops it)."""
        if not self._unit_lock.acquire(timeout=timeout):
            return False
        self._unit_lock.release()
        return True

    def trigger(self) -> None:
        """Start the next pass now instead of at its time."""
        self._wake.set()

    def _loop(self) -> None:
        next_at = time.monotonic() + self.first_delay
        while not self._stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                self._wake.wait(delay)
                self._wake.clear()
            if self._stop.is_set():
                return
            started = time.monotonic()
            if self.paused():
                next_at = started + min(self.interval, 5.0)  # look again soon: the drain ends
                continue
            try:
                self.run_pass()
            except Exception:  # noqa: BLE001 - the thread must outlive a bug in one unit
                log.exception("scrub %s: a pass failed", self.name)
            next_at = started + self.interval

    # ------------------------------------------------------------------ one pass
    def run_pass(self, rate: float | None = None) -> ScrubPass:
        """Check every unit once, at ``rate`` (default: the scrubber's); blocks until done."""
        with self._pass_lock:
            record = ScrubPass(started_at=time.time())
            self.current = record
            pacer = self._pacer = Pacer(self.rate if rate is None else rate, self._stop, halt=self.paused)
            try:
                units = list(self.units())
                record.units = len(units)
                for unit in units:
                    if self.paused():
                        record.interrupted = "the data dir is being recovered"
                        break
                    self.current_file = unit.file
                    with self._unit_lock:
                        self._check(unit, pacer, record)
                else:
                    record.complete = True
            except ScrubStopped:
                record.interrupted = "stopped" if self._stop.is_set() else "the data dir is being recovered"
            except (EngineError, OSError) as exc:
                record.interrupted = f"{type(exc).__name__}: {exc}"
            finally:
                record.finished_at = time.time()
                record.bytes_read = pacer.bytes
                self._bytes_done += pacer.bytes
                self._pacer = None
                self.current = self.current_file = None
                self.last_pass = record
                self.passes += 1
            if self.on_pass is not None:
                self.on_pass(record)
            return record

    def _check(self, unit: ScrubUnit, pacer: Pacer, record: ScrubPass) -> None:
        report = VerifyReport(backend="scrub")
        try:
            unit.check(report, pacer)
        except CorruptionError as exc:
            report.add(getattr(exc, "kind", "checksum"), exc.message, file=exc.file or unit.file, offset=exc.offset)
        except (EngineError, OSError):
            if unit.live():
                raise
            record.skipped += 1
            return
        if report.ok:
            record.checked += 1
            return
        if self.paused() or not unit.live():
            record.skipped += 1
            return
        record.checked += 1
        for problem in report.problems:
            record.problems.append(problem)
            self.on_problem(problem)

    # ------------------------------------------------------------------ reporting
    @property
    def bytes_total(self) -> int:
        """Bytes read by every pass so far, the running one included."""
        pacer = self._pacer
        return self._bytes_done + (pacer.bytes if pacer is not None else 0)

    def status(self) -> dict[str, Any]:
        last = self.last_pass
        current = self.current
        behind = bool(
            last is not None
            and last.complete
            and last.finished_at is not None
            and self.interval > 0
            and last.finished_at - last.started_at > self.interval
        )
        return {
            "enabled": self.interval > 0,
            "interval_seconds": self.interval,
            "rate_bytes_per_second": self.rate,
            "running": current is not None,
            "passes": self.passes,
            "bytes_read_total": self.bytes_total,
            "current": None
            if current is None
            else {
                "file": self.current_file,
                "started_at": current.started_at,
                "units": current.units,
                "checked": current.checked,
                "bytes_read": self.bytes_total - self._bytes_done,
            },
            "last_pass": None if last is None else last.to_json(),
            "behind": behind,
        }


def wal_units(wal_dir: Any) -> list[ScrubUnit]:
    """The sealed segments of a WAL (the newest is being written: it is not cold)."""
    segments = list_segments(wal_dir)
    units = []
    for info in segments[:-1]:

        def check(report: VerifyReport, pace: Pace, info: Any = info) -> None:
            def stop(_segment: str, _data: bytes, _is_last: bool, problem: SegmentProblem) -> ScanAction:
                report.add("wal", problem.reason, file=f"wal/{info.path.name}", offset=problem.offset)
                return ScanAction.STOP

            position = 0
            for record in scan_segments([info], 1, 2**63, stop):
                if record.offset - position >= 256 * 1024:
                    pace(record.offset - position)
                    position = record.offset
            pace(max(0, info.size - position))

        units.append(ScrubUnit(file=f"wal/{info.path.name}", size=info.size, check=check, live=info.path.exists))
    return units
