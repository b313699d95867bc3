"""``manifest.json``: the live SSTables per level, the durable LSN, and the last edit.

It is replaced atomically (temp + fsync + rename + directory fsync) on every change, and new
tables are fsynced before the manifest that names them is written, so a crash leaves the old or
the new manifest, never one naming a file that was not complete.

Besides the levels it records:

- ``durable_lsn``: every write up to it is in the listed tables (WAL replay starts after it);
- ``last_edit``: what the latest change added and removed, so that a data dir copied while the
  engine ran (files and manifest from slightly different instants) can fall back to the state
  before that edit when the tables it added are missing;
- ``retired``: superseded tables not yet deleted (deleted one edit later, or on the next open);
- ``pending``: table numbers being written when it was saved (an interrupted flush or compaction
  leaves them behind; they and numbers from ``next_file_number`` on are ours to remove).

A ``checksum`` (crc32c of the canonical JSON without it) catches damage a JSON parser would not.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.crc import crc32c
from engines.errors import CorruptionError, UnsupportedFormatError
from engines.fsutil import atomic_write_bytes
from engines.lsm.table_meta import TableMeta

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_FORMAT_VERSION",
    "Manifest",
    "Edit",
    "load_manifest",
    "save_manifest",
    "ManifestError",
    "level_problems",
]

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT_VERSION = 1
_FORMAT = "drconsole-lsm-manifest"
_REBUILD_HINT = "rebuild it from the SSTables with `drconsole engine repair`; the old one goes to quarantine"


class ManifestError(CorruptionError):
    """The manifest is unreadable or inconsistent."""

    def __init__(self, message: str) -> None:
        super().__init__(f"{MANIFEST_NAME}: {message}", file=MANIFEST_NAME, offset=None, hint=_REBUILD_HINT)


@dataclass(frozen=True)
class Edit:
    """One manifest change: tables added and removed, and the durable LSN before it."""

    reason: str
    added: tuple[int, ...] = ()
    removed: tuple[TableMeta, ...] = ()
    durable_lsn_before: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "added": list(self.added),
            "removed": [meta.to_json() for meta in self.removed],
            "durable_lsn_before": self.durable_lsn_before,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Edit:
        return cls(
            reason=str(data["reason"]),
            added=tuple(int(n) for n in data["added"]),
            removed=tuple(TableMeta.from_json(item) for item in data["removed"]),
            durable_lsn_before=int(data["durable_lsn_before"]),
        )


@dataclass(frozen=True)
class Manifest:
    levels: tuple[tuple[TableMeta, ...], ...]
    durable_lsn: int = 0
    next_file_number: int = 1
    generation: int = 0
    last_edit: Edit | None = None
    retired: tuple[int, ...] = ()
    pending: tuple[int, ...] = ()  # numbers being written when this manifest was saved
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def empty(cls, levels: int) -> Manifest:
        return cls(levels=tuple(() for _ in range(levels)))

    def tables(self) -> list[TableMeta]:
        return [meta for level in self.levels for meta in level]

    def numbers(self) -> set[int]:
        return {meta.number for level in self.levels for meta in level}

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "format": _FORMAT,
            "format_version": MANIFEST_FORMAT_VERSION,
            "generation": self.generation,
            "durable_lsn": self.durable_lsn,
            "next_file_number": self.next_file_number,
            "levels": [[meta.to_json() for meta in level] for level in self.levels],
            "last_edit": self.last_edit.to_json() if self.last_edit is not None else None,
            "retired": list(self.retired),
            "pending": list(self.pending),
            "updated_at": time.time(),
        }
        body.update(self.extra)
        return body


def _checksum(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return f"crc32c:{crc32c(canonical):08x}"


def save_manifest(data_dir: Path, manifest: Manifest) -> None:
    """Replace ``manifest.json`` atomically (raises DiskFullError / StorageIOError)."""
    body = manifest.to_json()
    body["checksum"] = _checksum(body)
    atomic_write_bytes(Path(data_dir) / MANIFEST_NAME, (json.dumps(body, indent=1) + "\n").encode("utf-8"))


def level_problems(levels: tuple[tuple[TableMeta, ...], ...] | list[list[TableMeta]]) -> list[str]:
    """Structural problems: levels >= 1 must be sorted and non-overlapping, ranges well formed."""
    problems = []
    for number, level in enumerate(levels):
        previous: TableMeta | None = None
        for meta in level:
            if meta.min_key > meta.max_key:
                problems.append(f"{meta.name} has min key after max key")
            if number and previous is not None and previous.max_key >= meta.min_key:
                problems.append(f"level {number}: {previous.name} and {meta.name} overlap or are out of order")
            previous = meta
    return problems


def load_manifest(data_dir: Path) -> Manifest:
    """Read and check ``manifest.json``; raises ``ManifestError`` / ``UnsupportedFormatError``."""
    path = Path(data_dir) / MANIFEST_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ManifestError("is missing") from None
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"is not JSON ({exc})") from None
    if not isinstance(body, dict) or body.get("format") != _FORMAT:
        raise ManifestError("is not a drconsole LSM manifest")
    version = body.get("format_version")
    if not isinstance(version, int) or version > MANIFEST_FORMAT_VERSION:
        raise UnsupportedFormatError(
            f"{path}: manifest format version {version!r} is newer than this drconsole "
            f"understands ({MANIFEST_FORMAT_VERSION})",
            hint="upgrade drconsole",
        )
    stored = body.pop("checksum", None)
    if stored != _checksum(body):
        raise ManifestError(f"checksum mismatch (stored {stored}, computed {_checksum(body)})")
    try:
        levels = tuple(tuple(TableMeta.from_json(item) for item in level) for level in body["levels"])
        last_edit = Edit.from_json(body["last_edit"]) if body.get("last_edit") else None
        manifest = Manifest(
            levels=levels,
            durable_lsn=int(body["durable_lsn"]),
            next_file_number=int(body["next_file_number"]),
            generation=int(body.get("generation", 0)),
            last_edit=last_edit,
            retired=tuple(int(n) for n in body.get("retired", ())),
            pending=tuple(int(n) for n in body.get("pending", ())),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ManifestError(f"has a malformed entry ({type(exc).__name__}: {exc})") from None
    for number, level in enumerate(manifest.levels):
        for meta in level:
            if meta.level != number:
                raise ManifestError(f"{meta.name} is listed in level {number} but says level {meta.level}")
            if meta.number >= manifest.next_file_number:
                raise ManifestError(f"{meta.name} is not below next_file_number {manifest.next_file_number}")
    problems = level_problems(manifest.levels)
    if problems:
        raise ManifestError("; ".join(problems))
    return manifest
