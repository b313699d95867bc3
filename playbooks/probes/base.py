"""Probes: the functions that answer a tree question from live evidence, and say why.

A probe takes a ``ProbeContext`` (a data dir, and/or a fleet snapshot, the configured nodes, the
thresholds) and returns an ``Answer``: yes, no, or None when it cannot tell, always with an evidence
sentence ("disk 97 % used on /data; threshold 85 %"). None is an answer of its own: the walk stops
there and the responder is asked, so a probe says "no" only when its evidence shows no. A probe
about another node than the target (a down primary, a hung standby) names it in
``data["subject"]``. Probes only read: a data dir is opened read-only, and never with rocksdict
unless it is a RocksDB dir. Expensive findings (an open, a verify) are cached in the context so that
two questions about one dir do the work once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Answer",
    "ProbeContext",
    "Probe",
    "PROBES",
    "probe",
    "DISK_THRESHOLD",
    "MEMORY_THRESHOLD",
    "LAG_THRESHOLD_SECONDS",
    "ARCHIVE_LAG_SECONDS",
    "BACKUP_MAX_AGE_SECONDS",
]

DISK_THRESHOLD = 0.85  # the reference alert rules: OrbitDiskSpaceLow > 85 %
MEMORY_THRESHOLD = 0.90  # OrbitMemoryHigh > 90 %
BACKUP_MAX_AGE_SECONDS = 26 * 3600  # a daily backup, with two hours of slack
LAG_THRESHOLD_SECONDS = 60.0  # a standby further behind than this is no failover target (Lightning: RPO < 1 min)
ARCHIVE_LAG_SECONDS = 5 * 60.0  # five archive timeouts (60 s each) without a segment archived while writes go on


@dataclass
class Answer:
    answer: bool | None
    evidence: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProbeContext:
    data_dir: Path | None = None
    snapshot: Any | None = None  # a FleetSnapshot (fleet), read by attribute
    node: str | None = None
    repo: Path | None = None
    disk_threshold: float = DISK_THRESHOLD
    memory_threshold: float = MEMORY_THRESHOLD
    backup_max_age_seconds: float = BACKUP_MAX_AGE_SECONDS
    lag_threshold_seconds: float = LAG_THRESHOLD_SECONDS
    archive_lag_seconds: float = ARCHIVE_LAG_SECONDS
    specs: tuple[Any, ...] = ()  # the configured nodes (fleet.NodeSpec): data dirs, logs, repos
    log_file: Path | None = None  # the target's log, when not in its spec (``triage --data-dir D --log-file F``)
    cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    def spec(self, name: str | None) -> Any | None:
        """The configured ``[[node]]`` called ``name``, if any."""
        return next((spec for spec in self.specs if spec.name == name), None)

    def log_file_of(self, name: str | None) -> Path | None:
        """Where node ``name`` logs: the target's ``log_file``, else its spec's."""
        if name == self.node and self.log_file is not None:
            return self.log_file
        spec = self.spec(name)
        found = getattr(spec, "log_file", None) if spec is not None else None
        return Path(found) if found is not None else None

    def data_dir_of(self, name: str | None) -> Path | None:
        """The data dir of node ``name`` on this host: the target's own, else its configured one."""
        if name is not None and name == self.node and self.data_dir is not None:
            return self.data_dir
        spec = self.spec(name)
        return Path(spec.data_dir).absolute() if spec is not None and spec.data_dir is not None else None


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
