"""Result records of the engine contract: statistics and verification reports.

Dataclasses with the pydantic spelling (``engines.records``): every engine open imports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engines.archiving import ArchiveState
from engines.records import Record

__all__ = ["Problem", "VerifyReport", "ArchiveState", "EngineStats", "RepairReport"]


@dataclass(kw_only=True)
class Problem(Record):
    """One thing verification found wrong. ``file`` is relative to the data dir."""

    kind: str  # e.g. "checksum", "key-order", "missing-file", "orphan-file", "wal"
    file: str | None = None
    offset: int | None = None  # byte offset, or page number for page-addressed files (see detail)
    detail: str


@dataclass(kw_only=True)
class VerifyReport(Record):
    """What ``Engine.verify()`` found. It is produced without changing a byte."""

    ok: bool = True
    backend: str
    problems: list[Problem] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)  # what was checked, with counts

    def add(self, kind: str, detail: str, *, file: str | None = None, offset: int | None = None) -> None:
        self.problems.append(Problem(kind=kind, file=file, offset=offset, detail=detail))
        self.ok = False

    def count(self, what: str, n: int = 1) -> None:
        self.checked[what] = self.checked.get(what, 0) + n


@dataclass(kw_only=True)
class EngineStats(Record):
    backend: str
    total_keys: int
    disk_usage_bytes: int
    memory_usage_bytes: int
    wal_bytes: int
    last_lsn: int
    details: dict[str, Any] = field(default_factory=dict)
    archive: ArchiveState | None = None
    """None when the data dir records no backup repository."""


@dataclass(kw_only=True)
class RepairReport(Record):
    """What a repair did. Nothing is deleted: dropped files are in ``quarantine``."""

    backend: str
    ok: bool = True
    safety_copy: str | None = None  # where the pre-repair copy is
    quarantine: str | None = None
    quarantined: list[str] = field(default_factory=list)  # files moved aside
    lost: list[str] = field(default_factory=list)  # what could not be recovered: key ranges, counts
    actions: list[str] = field(default_factory=list)
    keys_before: int | None = None
    keys_after: int | None = None
    # Writes the repair brought back by replaying the WAL (the repair ends with one open): a
    # run's accounting (playbooks.accounting) counts them as recovered, not lost.
    recovered_lsn_ranges: list[tuple[int, int]] = field(default_factory=list)
