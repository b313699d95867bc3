"""How far behind each standby is, seen from the primary: records and seconds since commit.

A standby reports its own lag (``replication.py``), but a standby that is stopped, paused or cut
off reports nothing; the primary still knows the last LSN each standby asked for. To turn that
into seconds it needs the commit time of the first record the standby lacks, so it keeps a
``CommitClock``: (LSN, time) samples at most one per ``resolution`` seconds, which bounds both
the memory (``keep`` samples) and the error (one ``resolution``) at any write rate.
"""

from __future__ import annotations

import bisect
import threading
import time

__all__ = ["CommitClock"]


class CommitClock:
    def __init__(self, *, resolution: float = 0.002, keep: int = 100_000) -> None:
        self.resolution = resolution
        self.keep = keep
        self._lsns: list[int] = []
        self._times: list[float] = []
        self._lock = threading.Lock()

    def note(self, lsn: int, when: float | None = None) -> None:
        """LSN ``lsn`` (and every LSN before it) is committed at ``when`` (monotonic, default now)."""
        now = time.monotonic() if when is None else when
        with self._lock:
            if self._lsns and (lsn <= self._lsns[-1] or now - self._times[-1] < self.resolution):
                if lsn > self._lsns[-1]:
                    self._lsns[-1] = lsn  # the same instant, to the resolution: widen the sample
                return
            self._lsns.append(lsn)
            self._times.append(now)
            if len(self._lsns) > 2 * self.keep:
                del self._lsns[: self.keep]  # amortised: trim by half once in a while
                del self._times[: self.keep]

    def committed_at(self, lsn: int) -> float | None:
        """When ``lsn`` was committed (monotonic), to the resolution; None if not yet.

        For an LSN older than every sample, the oldest sample's time: a lower bound of the lag.
        """
        with self._lock:
            index = bisect.bisect_left(self._lsns, lsn)
            if index == len(self._lsns):
                return None
            return self._times[index]

    def lag(self, applied: int, committed: int, now: float | None = None) -> tuple[int, float]:
        """(records, seconds) a standby that applied ``applied`` is behind ``committed``."""
        if applied >= committed:
            return 0, 0.0
        since = self.committed_at(applied + 1)
        moment = time.monotonic() if now is None else now
        return committed - applied, 0.0 if since is None else max(0.0, moment - since)
