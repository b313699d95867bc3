"""Reading the log back: replay in LSN order under one of RocksDB's four recovery modes, validation.

The reader never writes. Each segment is read into memory whole (at most the segment size limit,
64 MiB by default): one read call per segment keeps replay fast, and the framing makes random
access pointless anyway. The loop itself lives in ``scan.py``; this module holds the policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum
from pathlib import Path

from engines.errors import InvalidArgumentError, WalCorruptionError
from engines.wal.problems import NOT_A_SEGMENT, WalProblem, WalValidation
from engines.wal.records import WalRecord
from engines.wal.scan import ScanAction, SegmentProblem, has_sound_fragment_after, scan_segments
from engines.wal.segments import SegmentInfo, list_segments

__all__ = ["RecoveryMode", "WalReader"]

# Beyond any LSN a u64 can hold: "no upper bound" without a None check per record.
_NO_UPPER_BOUND = 1 << 64


class RecoveryMode(str, Enum):  # noqa: UP042 - str() of a member keeps naming the class in messages
    """What to do about a problem, as RocksDB's ``WALRecoveryMode`` names it."""

    TOLERATE_CORRUPTED_TAIL = "tolerate_corrupted_tail_records"
    """A bad or torn record at the end of the last segment, with nothing sound after it, is the
    normal result of a crash during a write: ignore it. Any other problem raises."""
    ABSOLUTE_CONSISTENCY = "absolute_consistency"
    """Any problem raises ``WalCorruptionError``."""
    POINT_IN_TIME = "point_in_time"
    """Stop quietly at the first problem; everything before it is yielded."""
    SKIP_ANY_CORRUPTED = "skip_any_corrupted_records"
    """Skip damaged records (resynchronising at the next 32 KiB block) and go on."""


class WalReader:
    """Reads the segments of one WAL directory.

    Args:
        wal_dir: the ``<data-dir>/wal`` directory. A missing directory is an empty log.
    """

    def __init__(self, wal_dir: Path) -> None:
        self._wal_dir = Path(wal_dir)
        self.tolerated_tail: WalProblem | None = None
        """The torn tail the last ``TOLERATE_CORRUPTED_TAIL`` replay ignored, if any.

        After a crash, cut it (``truncate_at_first_bad``) before opening a ``WalWriter``: the
        writer starts a new segment, and a torn tail that is no longer in the last segment is
        middle damage to every later reader.
        """

    @property
    def wal_dir(self) -> Path:
        return self._wal_dir

    def records(
        self,
        *,
        from_lsn: int = 1,
        to_lsn: int | None = None,
        mode: RecoveryMode | str = RecoveryMode.TOLERATE_CORRUPTED_TAIL,
    ) -> Iterator[WalRecord]:
        """The records with ``from_lsn <= lsn <= to_lsn``, in LSN order across segments.

        Segments that end below ``from_lsn`` are not opened (their names say where they start).

        Raises:
            WalCorruptionError: (while iterating) a problem the mode does not let pass.
            InvalidArgumentError: a bad bound or mode.
        """
        try:
            recovery = RecoveryMode(mode)
        except ValueError as exc:
            raise InvalidArgumentError(f"unknown WAL recovery mode {mode!r}") from exc
        if not isinstance(from_lsn, int) or from_lsn < 0:
            raise InvalidArgumentError(f"from_lsn must be a non-negative integer, not {from_lsn!r}")
        if to_lsn is not None and (not isinstance(to_lsn, int) or to_lsn < 0):
            raise InvalidArgumentError(f"to_lsn must be a non-negative integer, not {to_lsn!r}")
        upper = _NO_UPPER_BOUND if to_lsn is None else to_lsn
        self.tolerated_tail = None
        return self._walk(list_segments(self._wal_dir), recovery, from_lsn, upper, None, 0)

    def validate(self) -> WalValidation:
        """Read everything and report the first problem; the counts describe the valid prefix."""
        segments = list_segments(self._wal_dir)
        found: list[WalProblem] = []
        count = 0
        first_lsn: int | None = None
        last_lsn: int | None = None
        for record in self._walk(segments, RecoveryMode.POINT_IN_TIME, 0, _NO_UPPER_BOUND, found, 1):
            if first_lsn is None:
                first_lsn = record.lsn
            last_lsn = record.lsn
            count += 1
        return WalValidation(
            ok=not found,
            records=count,
            first_lsn=first_lsn,
            last_lsn=last_lsn,
            corruption=found[0] if found else None,
            segments=len(segments),
            bytes=sum(segment.size for segment in segments),
        )

    def problems(self, limit: int = 100) -> list[WalProblem]:
        """Every problem a skipping reader meets, up to ``limit``, in log order."""
        found: list[WalProblem] = []
        if limit <= 0:
            return found
        segments = list_segments(self._wal_dir)
        for _record in self._walk(segments, RecoveryMode.SKIP_ANY_CORRUPTED, 0, _NO_UPPER_BOUND, found, limit):
            pass
        return found

    def _walk(
        self,
        segments: list[SegmentInfo],
        mode: RecoveryMode,
        from_lsn: int,
        to_lsn: int,
        found: list[WalProblem] | None,
        limit: int,
    ) -> Iterator[WalRecord]:
        """The one loop behind ``records``, ``validate`` and ``problems``.

        ``found`` collects the problems met (up to ``limit``, then the walk ends).
        """
        start = 0
        for index, segment in enumerate(segments):
            if segment.first_lsn > from_lsn:
                break
            start = index

        def on_problem(segment: str, data: bytes, is_last: bool, problem: SegmentProblem) -> ScanAction:
            if found is not None:
                found.append(WalProblem(segment, problem.offset, problem.reason))
                if len(found) >= limit:
                    return ScanAction.STOP
            if mode is RecoveryMode.POINT_IN_TIME:
                return ScanAction.STOP
            if mode is RecoveryMode.SKIP_ANY_CORRUPTED:
                return ScanAction.NEXT_SEGMENT if problem.reason == NOT_A_SEGMENT else ScanAction.RESUME
            # Physical damage (``resync``) is what a torn write leaves behind; a sound record with
            # a wrong LSN, or a file that is no segment at all, never is.
            if (
                mode is RecoveryMode.TOLERATE_CORRUPTED_TAIL
                and is_last
                and problem.resync
                and problem.reason != NOT_A_SEGMENT
                and not has_sound_fragment_after(data, problem.at)
            ):
                self.tolerated_tail = WalProblem(segment, problem.offset, problem.reason)
                return ScanAction.STOP
            raise WalCorruptionError(segment, problem.offset, problem.reason) from None

        return scan_segments(segments[start:], from_lsn, to_lsn, on_problem)
