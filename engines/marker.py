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
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from engines.errors import NotFoundError, UnsupportedFormatError
from engines.fsutil import atomic_write_text
from engines.records import Record

__all__ = [
    "MARKER_NAME",
    "BACKENDS",
    "FORMAT_VERSION",
    "ArchiveRecord",
    "Marker",
    "read_marker",
    "write_marker",
    "detect_backend",
]

MARKER_NAME = "drconsole.json"
BACKENDS = ("cow", "lsm", "rocksdb")
FORMAT_VERSION = 1


@dataclass
class ArchiveRecord:
    """The backup repository a data dir archives its WAL into (``backup create`` records it).

    ``data_dir`` is where the data dir was when the repository was recorded: a copy of it elsewhere
    (a drill sandbox, a ``cp -a``) must not archive into the original's repository, so it holds its
    WAL instead until a backup records a repository for it.
    """

    repo: str
    data_dir: str
    since: str = ""


@dataclass
class Marker(Record):
    """The contents of ``drconsole.json``.

    A plain dataclass (read by every command that touches a data dir, so it must not cost a
    pydantic import, ``engines.records``); ``model_validate``, ``model_copy`` and
    ``model_dump_json`` keep the spelling of the pydantic model it was. Unknown fields are
    ignored, so a marker written by a newer drconsole still opens.
    """

    backend: str
    format_version: int = FORMAT_VERSION
    node_name: str = ""
    epoch: int = 0
    durability: str = "sync"
    created_at: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)
    archive: ArchiveRecord | None = None

    @classmethod
    def model_validate(cls, raw: object) -> Marker:
        """Check and build; ``ValueError`` names the first bad field."""
        if not isinstance(raw, dict):
            raise ValueError("the marker is not a JSON object")
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name not in raw:
                if item.default is MISSING and item.default_factory is MISSING:
                    raise ValueError(f"{item.name}: Field required")
                continue
            value = raw[item.name]
            kind = _KINDS[item.name]
            if item.name == "archive" and value is not None:
                if (
                    not isinstance(value, dict)
                    or not all(isinstance(value.get(key, ""), str) for key in ("repo", "data_dir", "since"))
                    or "repo" not in value
                    or "data_dir" not in value
                ):
                    raise ValueError("archive: should be {repo, data_dir, since}")
                value = ArchiveRecord(value["repo"], value["data_dir"], value.get("since", ""))
            elif item.name != "archive" and (not isinstance(value, kind) or isinstance(value, bool)):
                raise ValueError(f"{item.name}: Input should be a valid {_WORDS[item.name]}, not {value!r}")
            values[item.name] = float(value) if item.name == "created_at" else value
        return cls(**values)

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Marker:
        return replace(self, **{"options": dict(self.options), **(update or {})})


_KINDS: dict[str, Any] = {
    "backend": str,
    "format_version": int,
    "node_name": str,
    "epoch": int,
    "durability": str,
    "created_at": (int, float),
    "options": dict,
    "archive": object,
}
_WORDS = {
    "backend": "string",
    "format_version": "integer",
    "node_name": "string",
    "epoch": "integer",
    "durability": "string",
    "created_at": "number",
    "options": "dictionary",
    "archive": "object",
}


def read_marker(data_dir: Path) -> Marker | None:
    """The marker of ``data_dir``; None when there is none. A damaged marker is an error."""
    path = Path(data_dir) / MARKER_NAME
    if not path.exists():
        return None
    try:
        marker = Marker.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise UnsupportedFormatError(
            f"{path} is not a valid drconsole marker: {str(exc).splitlines()[0]}",
            hint="move it aside; the backend is then detected from the files",
        ) from exc
    if marker.format_version > FORMAT_VERSION:
        raise UnsupportedFormatError(
            f"{path}: format version {marker.format_version} is newer than this drconsole "
            f"understands ({FORMAT_VERSION})",
            hint="upgrade drconsole",
        )
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
        raise NotFoundError(
            f"data dir {data_dir} does not exist", hint="check the path, or create one with `drconsole engine init`"
        )
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
    raise NotFoundError(
        f"{data_dir} is not a drconsole data dir (no {MARKER_NAME}, no engine files)",
        hint="create one with `drconsole engine init`, or check the path",
    )
