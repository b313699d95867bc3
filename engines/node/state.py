"""A node's role and timeline, kept across restarts.

The epoch lives in the data dir's ``drconsole.json`` marker (``engines.marker``), where every
tool that opens the data dir sees it. The rest of what a node knows about its place in the
cluster goes into ``node.json`` beside it, replaced atomically:

* ``role``: ``primary``, ``standby`` or ``fenced`` (a primary that learnt of a higher epoch).
* ``upstream``: the URL a standby follows.
* ``history``: one entry per promotion, ``{epoch, start_lsn}``: the LSN the new primary held
  when it took over (PostgreSQL's timeline history). A node that rejoins from an older epoch
  with records past that LSN has diverged, and must be reseeded rather than followed.
* ``known_epoch``: the highest epoch this node has seen anywhere, so that a fenced node stays
  fenced after a restart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, ValidationError

from engines.errors import UnsupportedFormatError
from engines.fsutil import atomic_write_text
from engines.marker import read_marker, write_marker

if TYPE_CHECKING:
    from engines.base import Engine

__all__ = [
    "STATE_NAME",
    "Role",
    "TimelineEntry",
    "NodeState",
    "load_state",
    "save_state",
    "switch_lsn",
    "persist_epoch",
    "MAX_EPOCH",
    "plausible_epoch",
]

STATE_NAME = "node.json"
# Epochs go up by one per promotion; past 2**53 a Prometheus sample (a float) cannot hold one exactly,
# so no epoch beyond that is taken from anyone (an API body, a peer, a header).
MAX_EPOCH = 2**53 - 1
Role = Literal["primary", "standby", "fenced"]


class TimelineEntry(BaseModel):
    epoch: int = Field(ge=0, le=MAX_EPOCH)
    start_lsn: int


class NodeState(BaseModel):
    role: Role = "primary"
    upstream: str | None = None
    fence_reason: str | None = None
    known_epoch: int = Field(default=0, ge=0, le=MAX_EPOCH)
    history: list[TimelineEntry] = []


def plausible_epoch(value: object) -> int | None:
    """``value`` as an epoch when it is one (an int, not a bool, 0..MAX_EPOCH); else None."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_EPOCH:
        return None
    return value


def load_state(data_dir: Path) -> NodeState | None:
    """The saved state of ``data_dir``; None when the dir has never been served."""
    path = Path(data_dir) / STATE_NAME
    if not path.exists():
        return None
    try:
        return NodeState.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        raise UnsupportedFormatError(
            f"{path} is not a valid node state file: {str(exc).splitlines()[0]}",
            hint="move it aside; the node then starts as a primary, or pass --follow",
        ) from exc


def save_state(data_dir: Path, state: NodeState) -> None:
    atomic_write_text(Path(data_dir) / STATE_NAME, state.model_dump_json(indent=2) + "\n")


def persist_epoch(engine: Engine, epoch: int) -> None:
    """Write ``epoch`` into the engine's marker (``drconsole.json``) and its in-memory copy."""
    path = Path(engine.path)
    marker = engine.marker
    marker.epoch = epoch
    on_disk = read_marker(path)
    if on_disk is not None:
        on_disk.epoch = epoch
        write_marker(path, on_disk)
    else:
        write_marker(path, marker)


def switch_lsn(history: list[TimelineEntry], epoch: int) -> int | None:
    """The last LSN shared with a node of ``epoch``: where the first later epoch began."""
    later = [entry.start_lsn for entry in history if entry.epoch > epoch]
    return min(later) if later else None
