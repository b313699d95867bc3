"""``drconsole.json``: the marker every data directory carries, and backend detection.

The marker names the backend, format version, node name, epoch and durability, and the backup
repository the data dir archives its WAL into, once a backup has recorded one. When it is lost,
the backend is still detected from the files (as the reference guide's ``get_backend_type``
does): ``data.cow`` means cow, ``manifest.json`` or ``sstables/`` means lsm, ``rocksdb/CURRENT``
means rocksdb.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from engines.errors import NotFoundError, UnsupportedFormatError
from engines.fsutil import atomic_write_text

__all__ = ["MARKER_NAME", "BACKENDS", "FORMAT_VERSION", "ArchiveRecord", "Marker", "read_marker", "write_marker", "detect_backend"]

MARKER_NAME = "drconsole.json"
BACKENDS = ("cow", "lsm", "rocksdb")
FORMAT_VERSION = 1


class ArchiveRecord(BaseModel):
    """The backup repository a data dir archives its WAL into (``backup create`` records it).

    ``data_dir`` is where the data dir was when the repository was recorded: a copy of it elsewhere
    (a drill sandbox, a ``cp -a``) must not archive into the original's repository, so it holds its
    WAL instead until a backup records a repository for it.
    """

    repo: str
    data_dir: str
    since: str = ""


class Marker(BaseModel):
    backend: str
    format_version: int = FORMAT_VERSION
    node_name: str = ""
    epoch: int = 0
    durability: str = "sync"
    created_at: float = 0.0
    options: dict[str, Any] = {}
    archive: ArchiveRecord | None = None


def read_marker(data_dir: Path) -> Marker | None:
    """The marker of ``data_dir``; None when there is none. A damaged marker is an error."""
    path = Path(data_dir) / MARKER_NAME
    if not path.exists():
        return None
    try:
        marker = Marker.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
        raise UnsupportedFormatError(
            f"{path} is not a valid drconsole marker: {str(exc).splitlines()[0]}",
            hint="move it aside; the backend is then detected from the files",
        ) from exc
    if marker.format_version > FORMAT_VERSION:
        raise UnsupportedFormatError(
            f"{path}: format version {marker.format_version} is newer than this drconsole "
            f"understands ({FORMAT_VERSION})", hint="upgrade drconsole")
    if marker.backend not in BACKENDS:
        raise UnsupportedFormatError(f"{path}: unknown backend {marker.backend!r}")
    return marker


def write_marker(data_dir: Path, marker: Marker) -> None:
    if not marker.created_at:
        marker.created_at = time.time()
    atomic_write_text(Path(data_dir) / MARKER_NAME, marker.model_dump_json(indent=2) + "\n")


def detect_backend(data_dir: Path) -> str:
    """The backend of ``data_dir``, from its marker or, failing that, from its files."""
    data_dir = Path(data_dir)
    if not data_dir.exists():
        raise NotFoundError(f"data dir {data_dir} does not exist",
                            hint="check the path, or create one with `drconsole engine init`")
    if not data_dir.is_dir():
        raise NotFoundError(f"{data_dir} is not a directory")
    marker = read_marker(data_dir)
    if marker is not None:
        return marker.backend
    if (data_dir / "data.cow").exists():
        return "cow"
    if (data_dir / "manifest.json").exists() or (data_dir / "sstables").is_dir():
        return "lsm"
    if (data_dir / "rocksdb" / "CURRENT").exists() or (data_dir / "CURRENT").exists():
        return "rocksdb"
    raise NotFoundError(f"{data_dir} is not a drconsole data dir (no {MARKER_NAME}, no engine files)",
                        hint="create one with `drconsole engine init`, or check the path")
