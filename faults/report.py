"""What a fault injector hands back (``FaultReport``: every change it made) and the helpers the
injector modules share: where a fault puts what it sets aside, and how it names files.

Split out of ``faults`` so that the injector modules (``local``, ``cluster``) import these
without importing the package that registers them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FaultChange", "FaultReport", "FaultError", "QUARANTINE", "fault_dir", "relative_name"]

QUARANTINE = ".quarantine"


@dataclass
class FaultChange:
    """One change made: a file, where, and the bytes before and after (hex, short), or a rename/signal."""

    file: str
    # "flip" | "truncate" | "move" | "encrypt" | "rewrite" | "signal" | "delete-keys" | "fill" | "spawn"
    action: str
    offset: int | None = None
    length: int | None = None
    before: str | None = None
    after: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if value is not None and value != ""}


@dataclass
class FaultReport:
    kind: str
    data_dir: str
    seed: int
    injected_at: float
    changes: list[FaultChange] = field(default_factory=list)
    summary: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "data_dir": self.data_dir,
            "seed": self.seed,
            "injected_at": self.injected_at,
            "summary": self.summary,
            "changes": [change.to_json() for change in self.changes],
            **self.extra,
        }


class FaultError(Exception):
    """The fault cannot be injected here (wrong backend, nothing to corrupt); nothing was changed.

    ``hint``: what to do instead; the message then ends with it in parentheses.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"{message} ({hint})" if hint else message)
        self.message, self.hint = message, hint


def relative_name(data_dir: Path, path: Path) -> str:
    try:
        return str(path.relative_to(data_dir))
    except ValueError:
        return str(path)


def fault_dir(data_dir: Path, label: str = "") -> Path:
    """A new ``<data-dir>/.quarantine/fault-<ts>[-label]/``: where a fault keeps what it set aside or made."""
    suffix = f"-{label}" if label else ""
    target = data_dir / QUARANTINE / f"fault-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**9:09d}{suffix}"
    target.mkdir(parents=True, exist_ok=True)
    return target
