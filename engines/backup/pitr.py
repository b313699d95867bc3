"""Point-in-time recovery: which full backup to start from, what WAL reaches the target, and replay.

A full backup holds the state at its ``lsn_end`` (C). From C the archive's segments are followed
while they join up (segment after segment, no LSN missing): that chain ends at some E, so the
backup reaches every LSN in C..E. The recoverable window is the union of those ranges.

Time targets: the state at time T is every record stamped at or before T. A backup can start a
recovery to T when its newest record is no later than T (``lsn_end_time_ns``); replay then stops
before the first record stamped after T. Past the chain's last record E, T is still known exactly
if something observed the log ending at E at a time after T (a backup run: see
``WalArchive.observe``); otherwise a write could have happened between E and T that the archive
never saw, and T is outside the window (exit 2, with the window in the message), as PostgreSQL
refuses to end recovery before its target.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engines.backup.archive import ArchivedSegment, WalArchive
from engines.backup.errors import RecoveryTargetError
from engines.backup.metadata import BackupMetadata, iso_utc
from engines.backup.progress import ProgressCallback, ProgressTracker
from engines.backup.repository import BackupEntry, Repository
from engines.wal import RecoveryMode, WalReader, WalRecord

if TYPE_CHECKING:
    from engines.base import Engine

__all__ = ["Reach", "RecoveryPlan", "ReplayResult", "reaches", "window_text", "plan_recovery", "replay"]


@dataclass
class Reach:
    """What one full backup can recover: LSN ``start``..``end`` and the times they were written.

    ``end_time_ns`` is the latest time whose state is known: the last record's time, or later
    when a backup run saw the log still ending at ``end`` then.
    """

    backup_id: str
    start: int
    end: int
    start_time_ns: int
    end_time_ns: int


@dataclass
class RecoveryPlan:
    """A full backup to restore and the WAL range to replay after it."""

    base: BackupEntry
    until_lsn: int | None
    until_ns: int | None
    reach: Reach

    @property
    def replays(self) -> bool:
        return self.until_lsn != self.reach.start or self.until_ns is not None


@dataclass
class ReplayResult:
    lsn: int
    timestamp_ns: int | None
    records: int
    passed_target_time: bool = False


def _chain_end(start: int, segments: list[ArchivedSegment]) -> ArchivedSegment | None:
    """The last segment of the unbroken chain that continues the log after LSN ``start``."""
    current, last_segment = start, None
    for segment in segments:
        span = segment.lsn_range
        if span is None:
            if segment.first_lsn > current + 1:
                break
            continue
        if span[0] <= current + 1 <= span[1]:
            current, last_segment = span[1], segment
            if segment.problem is not None:
                break  # replay cannot read past the damage
        elif span[0] > current + 1:
            break
    return last_segment


def reaches(repo: Repository, archive: WalArchive | None = None) -> list[Reach]:
    """One ``Reach`` per readable full backup, oldest first."""
    archive = archive or WalArchive(repo)
    segments = archive.segments(present=True)
    fulls = repo.full_backups()
    observations = [(meta.timestamp_ns, meta.lsn_end) for meta in fulls]
    observed = archive.observation()
    if observed is not None:
        observations.append(observed)
    found = []
    for meta in fulls:
        last = _chain_end(meta.lsn_end, segments)
        end = meta.lsn_end if last is None or last.last_lsn is None else last.last_lsn
        end_time = meta.lsn_end_time_ns if last is None or last.last_time_ns is None else last.last_time_ns
        for at_ns, lsn in observations:
            if lsn == end and at_ns > end_time:
                end_time = at_ns - 1  # the state at any time before the observation
        found.append(Reach(meta.backup_id, meta.lsn_end, end, meta.lsn_end_time_ns, end_time))
    return found


def window_text(found: list[Reach]) -> str:
    """The recoverable window(s), e.g. ``LSN 10..500 (2026-11-23T10:00:00.000000Z .. ...)``."""
    if not found:
        return "none: the repository holds no full backup"
    merged: list[Reach] = []
    for reach in sorted(found, key=lambda r: r.start):
        if merged and reach.start <= merged[-1].end + 1:
            last = merged[-1]
            if reach.end > last.end:
                last.end, last.end_time_ns = reach.end, max(last.end_time_ns, reach.end_time_ns)
            continue
        merged.append(Reach(reach.backup_id, reach.start, reach.end, reach.start_time_ns, reach.end_time_ns))
    return "; ".join(f"LSN {r.start}..{r.end} ({iso_utc(r.start_time_ns)} .. {iso_utc(r.end_time_ns)})" for r in merged)


def plan_recovery(
    repo: Repository, *, reference: str | None = None, until_ns: int | None = None, until_lsn: int | None = None
) -> RecoveryPlan:
    """The newest full backup that reaches the target (or the one named), checked against the window.

    Without a target: ``reference`` (or the newest backup); an incremental one is recovered to
    its ``lsn_end`` from the newest full backup before it.

    Raises:
        RecoveryTargetError: the target is outside the recoverable window (exit 2).
        BackupNotFoundError: no such backup.
    """
    archive = WalArchive(repo)
    found = {reach.backup_id: reach for reach in reaches(repo, archive)}
    if not found:
        damaged = [entry.error for entry in repo.backups() if entry.error is not None]
        if damaged:
            raise damaged[-1]  # names the damaged metadata file (exit 1), not an empty window
    if until_ns is None and until_lsn is None:
        entry = repo.find(reference)
        meta = entry.require_metadata()
        if meta.type == "full":
            return RecoveryPlan(entry, meta.lsn_end, None, found[meta.backup_id])
        until_lsn, reference = meta.lsn_end, None
    if until_lsn is not None and until_lsn < 0:
        raise RecoveryTargetError(f"--until-lsn must be 0 or more, not {until_lsn}")
    named = repo.find(reference) if reference not in (None, "latest") else None
    if named is not None and named.require_metadata().type != "full":
        raise RecoveryTargetError(
            f"{named.backup_id} is an incremental backup; point-in-time recovery starts from a full one",
            hint="leave out the ID to pick the base",
        )
    candidates = [reach for reach in found.values() if named is None or reach.backup_id == named.backup_id]
    if until_lsn is not None:
        eligible = [r for r in candidates if r.start <= until_lsn]
        what = f"LSN {until_lsn}"
    else:
        assert until_ns is not None
        eligible = [r for r in candidates if r.start_time_ns <= until_ns]
        what = iso_utc(until_ns)
    if not eligible:
        where = f"backup {named.backup_id}" if named is not None else "the oldest full backup"
        raise RecoveryTargetError(
            f"target {what} is before {where}; recoverable window: {window_text(list(found.values()))}",
            hint="pick a target inside the window",
        )
    best = max(eligible, key=lambda r: (r.start, r.start_time_ns))
    inside = until_lsn <= best.end if until_lsn is not None else until_ns is not None and until_ns <= best.end_time_ns
    if not inside:
        raise RecoveryTargetError(
            f"target {what} is after the newest WAL that backup {best.backup_id} can replay to "
            f"(LSN {best.end}, {iso_utc(best.end_time_ns)}); recoverable window: {window_text(list(found.values()))}",
            hint="archive newer WAL with `backup create --incremental`, or pick a target inside the window",
        )
    entries = {entry.backup_id: entry for entry in repo.backups()}
    return RecoveryPlan(entries[best.backup_id], until_lsn, until_ns, best)


def _bounded(
    records: Iterable[WalRecord], until_ns: int | None, result: ReplayResult, tracker: ProgressTracker
) -> Iterator[WalRecord]:
    for record in records:
        if until_ns is not None and record.timestamp_ns > until_ns:
            result.passed_target_time = True
            return
        result.lsn, result.timestamp_ns = record.lsn, record.timestamp_ns
        result.records += 1
        tracker.advance(1)
        yield record


def replay(
    engine: Engine, archive_dir: Path, plan: RecoveryPlan, progress: ProgressCallback | None = None
) -> ReplayResult:
    """Apply archived WAL after the base backup's LSN up to the plan's target, keeping LSNs.

    Raises:
        RecoveryTargetError: the archive ended (a gap, damage) before the target was reached.
    """
    base_meta: BackupMetadata = plan.base.require_metadata()
    start = base_meta.lsn_end
    result = ReplayResult(start, base_meta.lsn_end_time_ns if start else None, 0)
    to_lsn = plan.until_lsn if plan.until_lsn is not None else plan.reach.end
    tracker = ProgressTracker(progress, "replay", max(0, to_lsn - start), unit="records")
    if to_lsn > start:
        # Point-in-time mode: stop quietly at a gap or damage; reaching the target is checked below.
        records = WalReader(archive_dir).records(from_lsn=start + 1, to_lsn=to_lsn, mode=RecoveryMode.POINT_IN_TIME)
        engine.apply_replicated(_bounded(records, plan.until_ns, result, tracker))
    tracker.finish()
    if result.lsn != to_lsn and not result.passed_target_time:
        raise RecoveryTargetError(
            f"replay stopped at LSN {result.lsn}, before LSN {to_lsn}: the archive does not hold the "
            f"records in between (a missing or damaged segment)",
            hint="run `drconsole backup verify --repo R` to see what is missing",
        )
    return result
