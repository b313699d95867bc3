"""Recorded fleets: a JSON file of successive snapshots, replayed as a source.

The file is ``{"ticks": [FleetSnapshot, ...]}``; ``FixtureSource`` returns them one per
``collect()`` and then keeps returning the last. Tests, snapshot tests and benchmarks use it so
that what the console shows does not depend on the machine or the clock.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from fleet.snapshot import FleetSnapshot

__all__ = ["FleetRecording", "FixtureSource", "load_recording", "save_recording"]


class FleetRecording(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ticks: tuple[FleetSnapshot, ...]


def load_recording(path: str | Path) -> tuple[FleetSnapshot, ...]:
    recording = FleetRecording.model_validate_json(Path(path).read_text(encoding="utf-8"))
    if not recording.ticks:
        raise ValueError(f"{path}: a recording needs at least one tick")
    return recording.ticks


def save_recording(path: str | Path, ticks: Sequence[FleetSnapshot]) -> None:
    data = FleetRecording(ticks=tuple(ticks)).model_dump(mode="json")
    Path(path).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


class FixtureSource:
    """Replays recorded snapshots, one per ``collect()``; the last one repeats."""

    def __init__(self, ticks: Sequence[FleetSnapshot]) -> None:
        if not ticks:
            raise ValueError("FixtureSource needs at least one snapshot")
        self.ticks = tuple(ticks)
        self.position = 0

    async def collect(self) -> FleetSnapshot:
        snapshot = self.ticks[min(self.position, len(self.ticks) - 1)]
        self.position += 1
        return snapshot

    async def aclose(self) -> None:
        return None
