"""A run's final accounting of lost data: what no later step brought back, and where it is kept.

A step that cannot keep something says so in its result: ``lost`` (one line per item, e.g. an
SSTable set aside with its key and LSN range) and, when every line has one, ``lost_lsn_ranges``
(the writes those items held). A later step that re-applies writes reports ``recovered_lsn_ranges``
(``backup.replay_archive``: the archived WAL replayed; ``backup.restore``: a backup restored up to
its LSN). A loss whose every range a later step re-applied is recovered; the rest is lost, and
where the step put it (its ``quarantine``) is named, since nothing is ever deleted. Counting
"lost" from the step that first reported it would call data lost that a refill put back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Accounting", "account"]


@dataclass
class Accounting:
    lost: list[str] = field(default_factory=list)  # not recovered by the end of the run
    recovered: list[str] = field(default_factory=list)  # reported lost by one step, re-applied by a later one


@dataclass
class _Loss:
    step: str
    lines: list[str]
    ranges: list[tuple[int, int]] | None  # None: some line has no known range (it cannot be shown recovered)
    quarantine: str | None
    recovered_by: str | None = None
    # What later steps re-applied, together: a refill from the archive and a fill from the backup
    # below where the archive begins recover one loss between them.
    reapplied: list[tuple[int, int]] = field(default_factory=list)


def _ranges(value: Any) -> list[tuple[int, int]] | None:
    if not isinstance(value, list):
        return None
    found = []
    for item in value:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            return None
        low, high = item
        if not isinstance(low, int) or not isinstance(high, int):
            return None
        found.append((low, high))
    return found


def _covered(span: tuple[int, int], by: list[tuple[int, int]]) -> bool:
    low, high = span
    for start, end in sorted(by):
        if start > low:
            return False
        if end >= low:
            low = end + 1
            if low > high:
                return True
    return low > high


def account(history: Mapping[str, Mapping[str, Any]]) -> Accounting:
    """The accounting of a run from its steps' results, in the order the steps ran."""
    losses: list[_Loss] = []
    for step, result in history.items():
        recovered = _ranges(result.get("recovered_lsn_ranges")) or []
        if recovered:
            for loss in losses:
                if loss.recovered_by is None and loss.ranges:
                    loss.reapplied += recovered
                    if all(_covered(span, loss.reapplied) for span in loss.ranges):
                        loss.recovered_by = step
        lines = result.get("lost")
        if isinstance(lines, list) and lines:
            ranges = _ranges(result.get("lost_lsn_ranges"))
            exact = ranges if ranges is not None and len(ranges) == len(lines) else None
            quarantine = result.get("quarantine")
            losses.append(_Loss(step, [str(line) for line in lines], exact, str(quarantine) if quarantine else None))
    accounting = Accounting()
    for loss in losses:
        if loss.recovered_by is not None:
            accounting.recovered += [
                f"{line} (reported by {loss.step}, re-applied by {loss.recovered_by})" for line in loss.lines
            ]
        else:
            kept = f" (kept in {loss.quarantine})" if loss.quarantine else ""
            accounting.lost += [f"{line}{kept}" for line in loss.lines]
    return accounting
