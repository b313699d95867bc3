"""Retention: which backups and archived WAL segments ``backup prune`` keeps, and pruning them.

The policy is the reference's: the newest 7 backups of the daily tier, 4 of the weekly, 12 of the
monthly (``choose_tier`` puts each full backup in one). On top of the counts:

* the newest full backup is always kept, whatever the counts say;
* a full backup the counts would drop is kept when archived WAL after it exists and it is the
  only base that can replay that range inside the retained window (the archive has a gap that
  only this backup bridges): a retained point-in-time window never loses a point it had;
* incremental backups and WAL segments are kept from the oldest kept full backup on (the WAL
  before it can no longer be replayed onto anything that is kept);
* a backup whose metadata cannot be read is kept: what cannot be judged is not removed.

What is removed is only our own backup copies, by the operator's retention policy: never a data
directory. ``prune_repository(..., confirm=False)`` only reports the plan (the CLI's dry run
without ``--yes``). A pruned backup is first renamed into ``.tmp/``, so a crash mid-removal
never leaves half a backup listed in a tier.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines import fsio
from engines.backup.archive import WalArchive
from engines.backup.mirror import working_copy
from engines.backup.pitr import Reach, reaches
from engines.backup.repository import TIERS, Repository
from engines.errors import InvalidArgumentError
from engines.fsutil import fsync_dir

__all__ = ["RetentionPolicy", "Decision", "PrunePlan", "plan_prune", "prune_repository"]


@dataclass(frozen=True)
class RetentionPolicy:
    daily: int = 7
    weekly: int = 4
    monthly: int = 12

    def count(self, tier: str) -> int:
        value: int = getattr(self, tier)
        return value

    def __post_init__(self) -> None:
        for tier in TIERS:
            if self.count(tier) < 0:
                raise InvalidArgumentError(f"--keep-{tier} must be 0 or more, not {self.count(tier)}")


@dataclass
class Decision:
    backup_id: str
    type: str | None
    tier: str
    keep: bool
    reason: str
    path: Path

    def to_json(self) -> dict[str, Any]:
        return {
            "backup_id": self.backup_id,
            "type": self.type,
            "tier": self.tier,
            "keep": self.keep,
            "reason": self.reason,
        }


@dataclass
class PrunePlan:
    decisions: list[Decision] = field(default_factory=list)
    wal_segments: list[str] = field(default_factory=list)
    wal_bytes: int = 0
    done: bool = False

    @property
    def removed(self) -> list[Decision]:
        return [decision for decision in self.decisions if not decision.keep]

    @property
    def kept(self) -> list[Decision]:
        return [decision for decision in self.decisions if decision.keep]

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": not self.done,
            "removed": [d.to_json() for d in self.removed],
            "kept": [d.to_json() for d in self.kept],
            "wal_segments_removed": len(self.wal_segments),
            "wal_bytes_removed": self.wal_bytes,
        }


def _covered(span: tuple[int, int], ranges: list[tuple[int, int]]) -> bool:
    """Whether the union of ``ranges`` covers every LSN of ``span``."""
    position = span[0]
    for first, last in sorted(ranges):
        if first > position:
            break
        position = max(position, last + 1)
        if position > span[1]:
            return True
    return position > span[1]


def plan_prune(repo: Repository, policy: RetentionPolicy) -> PrunePlan:
    """Decide, without changing anything, what pruning with ``policy`` keeps and removes."""
    entries = repo.backups()
    plan = PrunePlan()
    decided: dict[str, Decision] = {}
    fulls = [e for e in entries if e.metadata is not None and e.metadata.type == "full"]
    for tier in TIERS:
        in_tier = sorted(
            (e for e in fulls if e.tier == tier), key=lambda e: e.require_metadata().timestamp_ns, reverse=True
        )
        limit = policy.count(tier)
        for rank, entry in enumerate(in_tier):
            keep = rank < limit
            reason = f"one of the newest {limit} {tier}" if keep else f"older than the newest {limit} {tier}"
            decided[entry.backup_id] = Decision(entry.backup_id, "full", tier, keep, reason, entry.path)
    if fulls:
        newest = max(fulls, key=lambda e: e.require_metadata().timestamp_ns)
        if not decided[newest.backup_id].keep:
            decided[newest.backup_id].keep = True
            decided[newest.backup_id].reason = "the newest full backup is always kept"
        _keep_for_pitr(decided, reaches(repo))
    kept_fulls = [e.require_metadata() for e in fulls if decided[e.backup_id].keep]
    floor = min((meta.lsn_end for meta in kept_fulls), default=None)
    needed_segments: set[str] = set()
    for entry in entries:
        meta = entry.metadata
        if meta is None:
            decided[entry.backup_id] = Decision(
                entry.backup_id, None, entry.tier, True, "metadata unreadable: kept until it is repaired", entry.path
            )
        elif meta.type == "incremental":
            keep = floor is None or meta.lsn_end > floor
            reason = "WAL after the oldest kept full backup" if keep else "before the oldest kept full backup"
            decided[entry.backup_id] = Decision(entry.backup_id, "incremental", entry.tier, keep, reason, entry.path)
            if keep:
                needed_segments.update(meta.segments)
    if floor is not None:
        for segment in WalArchive(repo).segments():
            last = segment.last_lsn if segment.last_lsn is not None else segment.first_lsn
            if last <= floor and segment.name not in needed_segments:
                plan.wal_segments.append(segment.name)
                plan.wal_bytes += segment.size
    plan.decisions = [decided[entry.backup_id] for entry in entries]
    return plan


def _keep_for_pitr(decided: dict[str, Decision], found: list[Reach]) -> None:
    """Keep dropped full backups that alone recover an LSN range inside the retained window."""
    kept = [reach for reach in found if decided[reach.backup_id].keep]
    if not kept:
        return
    floor = min(reach.start for reach in kept)
    for reach in sorted(found, key=lambda r: r.start, reverse=True):
        decision = decided[reach.backup_id]
        if decision.keep or reach.start < floor or reach.end == reach.start:
            continue  # kept already, older than the window, or no archived WAL depends on it
        if not _covered((reach.start, reach.end), [(r.start, r.end) for r in kept]):
            decision.keep = True
            decision.reason = f"the only backup that recovers LSN {reach.start}..{reach.end} (a gap in the WAL archive)"
            kept.append(reach)


def prune_repository(
    repo_path: str | Path, policy: RetentionPolicy | None = None, *, confirm: bool = False
) -> PrunePlan:
    """Plan pruning, and carry it out when ``confirm`` is true."""
    with working_copy(repo_path, fetch="wal" if confirm else "metadata", write=confirm) as local:
        return _prune(Repository.open(local), policy or RetentionPolicy(), confirm)


def _prune(repo: Repository, policy: RetentionPolicy, confirm: bool) -> PrunePlan:
    log = repo.log("prune")
    with repo.lock():
        plan = plan_prune(repo, policy)
        if not confirm:
            return plan
        repo.clear_stale()
        for decision in plan.removed:
            # Our own backup copy, removed by the retention policy the operator set and confirmed.
            doomed = repo.scratch(decision.backup_id, "pruning")
            fsio.rename(decision.path, doomed)
            fsync_dir(decision.path.parent)
            shutil.rmtree(doomed)
            log.info(f"removed {decision.type} backup {decision.backup_id} ({decision.tier}): {decision.reason}")
        if plan.wal_segments:
            # Archived copies of WAL that no kept backup can replay any more.
            WalArchive(repo).remove(plan.wal_segments)
            log.info(
                f"removed {len(plan.wal_segments)} archived WAL segments ({plan.wal_bytes} bytes) "
                f"before the oldest kept full backup"
            )
        plan.done = True
    return plan
