"""``node-agent.json`` in a served data dir: where the node that holds it listens, and its token file.

``drconsole node serve`` writes it once the node holds the data dir's lock and removes it when it
stops. A tool on the same host that finds the data dir locked (``backup create`` from the shipped
timer) reads it to hand its work to the node instead of failing. The marker only points: whether
the node is alive is the lock's answer (``is_data_dir_locked``), never the file's; the token is
never in it, only the path of the file holding it (readable by whom the operator chose).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.fsutil import atomic_write_text
from engines.locking import SERVING_MARKER_NAME, is_data_dir_locked
from engines.pids import process_alive

__all__ = ["MARKER_NAME", "ServingMarker", "write_marker", "remove_marker", "serving_node"]

MARKER_NAME = SERVING_MARKER_NAME


@dataclass(frozen=True)
class ServingMarker:
    url: str
    name: str
    pid: int
    token_file: str | None = None
    started_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def write_marker(data_dir: Path, *, url: str, name: str, token_file: Path | None) -> ServingMarker:
    marker = ServingMarker(
        url=url,
        name=name,
        pid=os.getpid(),
        token_file=str(Path(token_file).absolute()) if token_file else None,
        started_at=time.time(),
    )
    atomic_write_text(Path(data_dir) / MARKER_NAME, json.dumps(marker.to_json(), indent=2) + "\n")
    return marker


def remove_marker(data_dir: Path) -> None:
    """Remove the marker if this process wrote it (a later node's marker is left alone)."""
    path = Path(data_dir) / MARKER_NAME
    found = _read(path)
    if found is not None and found.pid == os.getpid():
        path.unlink(missing_ok=True)


def serving_node(data_dir: Path) -> ServingMarker | None:
    """The node serving ``data_dir`` now: its marker, when the data dir's lock is held; else None.

    A node whose agent released the data dir for a recovery step holds no lock but is alive (its
    process is the marker's): it is still the one to ask (it answers 503 "recovering" until done).
    """
    marker = _read(Path(data_dir) / MARKER_NAME)
    if marker is None:
        return None
    if is_data_dir_locked(Path(data_dir)) or (marker.pid != os.getpid() and process_alive(marker.pid)):
        return marker
    return None


def _read(path: Path) -> ServingMarker | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ServingMarker(
            url=str(data["url"]),
            name=str(data.get("name", "")),
            pid=int(data.get("pid", 0)),
            token_file=data.get("token_file"),
            started_at=float(data.get("started_at", 0.0)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
