"""Incident severity: the reference guides' P0-P3 table, and which fault is which level.

One table for every face that shows a severity (the console's card and header, ``drconsole triage``,
the incident report, the webhook), so they cannot disagree. The levels and response times are the
Orbit guide's ("Incident Classification"); the fault -> level mapping is its "Common Failure
Scenarios" list, with the replication faults of the Lightning and Plumtree guides placed by the same
rule: data corruption or a risk of losing data is P0, an outage of part of the service is P1,
degraded performance or protection is P2, the rest P3. A healthy diagnosis has no severity (None):
no incident is opened for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Level", "LEVELS", "SeverityLevel", "FAULT_SEVERITY", "severity_of", "level", "rank", "worst"]

Level = Literal["P0", "P1", "P2", "P3"]


@dataclass(frozen=True)
class SeverityLevel:
    name: Level
    meaning: str
    response_seconds: int  # the guide's response time: the default RTO target of an incident at this level
    impact: str


LEVELS: dict[str, SeverityLevel] = {
    "P0": SeverityLevel("P0", "complete service outage or data at risk", 15 * 60, "all users affected"),
    "P1": SeverityLevel("P1", "partial service degradation", 60 * 60, "some users affected"),
    "P2": SeverityLevel("P2", "performance or protection degraded", 4 * 3600, "reduced performance"),
    "P3": SeverityLevel("P3", "minor issues", 24 * 3600, "minimal impact"),
}

# Fault kind (what the diagnosis concluded) -> level. Kinds are the words a tree leaf names.
FAULT_SEVERITY: dict[str, Level] = {
    # data corrupt, lost, or at risk of divergence: P0 (Orbit: Data Corruption, WAL Corruption, Hardware)
    "data-corruption": "P0",
    "wal-corruption": "P0",
    "files-missing": "P0",
    "index-lost": "P0",  # the store's index (lsm manifest, rocksdb MANIFEST, cow meta pages) lost: it cannot start
    "split-brain": "P0",
    "ransomware": "P0",
    "total-cluster-loss": "P0",
    "minority-survives": "P0",
    "disk-full": "P0",  # writes fail now (Orbit: Disk Space Exhaustion P0/P1)
    "cannot-start": "P0",  # the service is down and the cause is not known yet
    # part of the service out: P1
    "primary-down": "P1",
    "fenced-node": "P1",
    "network-partition": "P1",
    "isolated-node": "P1",
    "process-crash": "P1",
    "process-hang": "P1",
    "memory-exhausted": "P1",
    "config-error": "P1",
    "disk-nearly-full": "P1",  # writes still succeed; the guide's P1 half of disk exhaustion
    # protection or performance degraded: P2
    "standby-lag": "P2",
    "stale-backup": "P2",
    "archive-lag": "P2",
    "compaction-failure": "P2",
    "performance": "P2",
}


def severity_of(fault: str) -> Level:
    """The level of a fault kind; an unknown kind is a bug in the tree, so it raises."""
    try:
        return FAULT_SEVERITY[fault]
    except KeyError:
        raise KeyError(f"no severity for fault kind {fault!r}; add it to playbooks/severity.py") from None


def level(name: str) -> SeverityLevel:
    return LEVELS[name]


def rank(name: str | None) -> int:
    """Sort key: P0 first; no severity last."""
    return int(name[1]) if name in LEVELS and name is not None else len(LEVELS)


def worst(names: list[str | None]) -> str | None:
    """The most severe of several levels (None when there is none)."""
    present = [name for name in names if name in LEVELS]
    return min(present, key=rank) if present else None
