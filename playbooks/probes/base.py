"""Probes: the functions that answer a tree question from live evidence, and say why.

A probe takes a ``ProbeContext`` (a data dir, and/or a fleet snapshot, the thresholds) and returns
an ``Answer``: yes, no, or None when it cannot tell, always with an evidence sentence
("disk 97 % used on /data; threshold 85 %"). Probes only read: a data dir is opened read-only,
and never with rocksdict unless it is a RocksDB dir. Expensive findings (an open, a verify) are
cached in the context so that two questions about one dir do the work once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Answer", "ProbeContext", "Probe", "PROBES", "probe", "DISK_THRESHOLD", "MEMORY_THRESHOLD"]

DISK_THRESHOLD = 0.85  # the reference alert rules: OrbitDiskSpaceLow > 85 %
MEMORY_THRESHOLD = 0.90  # OrbitMemoryHigh > 90 %
BACKUP_MAX_AGE_SECONDS = 26 * 3600  # a daily backup, with two hours of slack


@dataclass
class Answer:
    answer: bool | None
    evidence: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProbeContext:
    data_dir: Path | None = None
    snapshot: Any | None = None  # a FleetSnapshot (playbooks.fleet), read by attribute
    node: str | None = None
    repo: Path | None = None
    disk_threshold: float = DISK_THRESHOLD
    memory_threshold: float = MEMORY_THRESHOLD
    backup_max_age_seconds: float = BACKUP_MAX_AGE_SECONDS
    cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]


@dataclass(frozen=True)
class Probe:
    name: str
    function: Callable[[ProbeContext], Answer]
    summary: str

    def __call__(self, context: ProbeContext) -> Answer:
        try:
            return self.function(context)
        except Exception as exc:  # noqa: BLE001 - a probe that breaks answers "cannot tell", with why
            return Answer(None, f"the probe {self.name} could not tell: {type(exc).__name__}: {exc}")


PROBES: dict[str, Probe] = {}


def probe(name: str) -> Callable[[Callable[[ProbeContext], Answer]], Callable[[ProbeContext], Answer]]:
    def register(function: Callable[[ProbeContext], Answer]) -> Callable[[ProbeContext], Answer]:
        if name in PROBES:
            raise ValueError(f"probe {name} registered twice")
        summary = (function.__doc__ or name).strip().splitlines()[0]
        PROBES[name] = Probe(name, function, summary)
        return function

    return register
