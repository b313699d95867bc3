"""Backup copies: a repository that lists other repositories (``copies`` in its marker) is copied to them.

``backup create --copy R2`` (and ``node serve --backup-copy``, ``backup_copies`` in a node's config)
records R2 in the repository's marker; from then on every writer of the repository (``backup
create``, and the WAL archiver of every process that opens the data dir) copies what it added to
each copy before it reports success, so every backup and every archived segment is in both places.
A copy that cannot be reached fails the archiving of a segment, which then stays in the data dir
(archive_status: not ``.done``) until it reaches both, exactly as for an unreachable repository.

Copying goes through the stores (``engines/backup/store.py``) file by file, of the bytes as
stored: encrypted files stay encrypted (no key needed), versions collapse to the newest, a new
backup appears in the copy whole (``put_directory``). Pruning is per repository: a copy keeps what
its own retention keeps.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engines.backup.location import location_text, parse_location
from engines.backup.store import RepositoryStore, backup_dir, bulk_kind

__all__ = ["CopyOutcome", "copies_of", "with_copies", "sync_copy", "sync_copies", "backups_in"]

_SKIPPED = (".tmp/", ".lock", "logs/")


@dataclass
class CopyOutcome:
    repo: str
    files: int = 0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"repo": self.repo, "files_copied": self.files, "ok": self.error is None, "error": self.error}


def copies_of(marker: dict[str, Any], own: str | None = None) -> list[str]:
    """The copies a repository's marker lists (never itself: a copy promoted to primary keeps the list)."""
    listed = marker.get("copies")
    if not isinstance(listed, list):
        return []
    return [item for item in listed if isinstance(item, str) and item != own]


def with_copies(marker: dict[str, Any], copies: list[str] | tuple[str, ...]) -> bool:
    """Add ``copies`` to ``marker``; whether it changed."""
    known = copies_of(marker)
    added = [location_text(copy) for copy in copies if location_text(copy) not in known]
    if added:
        marker["copies"] = known + added
    return bool(added)


def _raw_store(location: str) -> RepositoryStore:
    """The store at ``location`` as stored (no decryption), versions collapsed."""
    from engines.backup.mirror import raw_store

    return raw_store(parse_location(location))


def sync_copy(source: str, target: str) -> int:
    """Copy to ``target`` every file of ``source`` it lacks (rewritten files: when they differ); how many."""
    origin, copy = _raw_store(source), _raw_store(target)
    try:
        have = {item.path: item for item in copy.files() if not item.path.startswith(_SKIPPED)}
        wanted = [item for item in origin.files() if not item.path.startswith(_SKIPPED)]
        copied = 0
        with tempfile.TemporaryDirectory(prefix="drconsole-copy-") as scratch:
            folder = Path(scratch)
            copy_dirs = {name for name in map(backup_dir, have) if name is not None}
            new_dirs = sorted(
                {name for name in (backup_dir(item.path) for item in wanted) if name is not None} - copy_dirs
            )
            loose = [item for item in wanted if backup_dir(item.path) is None]
            for item in sorted(loose, key=lambda item: (_bulk(item.path) is None, item.path)):
                local = folder / "files" / item.path
                if item.path in have and (
                    _bulk(item.path)
                    or have[item.path].size == item.size
                    and copy.sha256(item.path) == origin.sha256(item.path)
                ):
                    continue
                origin.fetch(item.path, local)
                if item.path in have:
                    copy.replace(local, item.path)
                else:
                    copy.put(local, item.path)
                copied += 1
            for name in new_dirs:
                for item in (item for item in wanted if backup_dir(item.path) == name):
                    origin.fetch(item.path, folder / "dirs" / item.path)
                    copied += 1
                copy.put_directory(folder / "dirs" / name, name)
        return copied
    finally:
        origin.close()
        copy.close()


def _bulk(path: str) -> str | None:
    """``bulk_kind`` of a file as stored (``.enc``: an encrypted one)."""
    return bulk_kind(path[: -len(".enc")] if path.endswith(".enc") else path)


def sync_copies(source: str | os.PathLike[str], copies: list[str]) -> list[CopyOutcome]:
    """``sync_copy`` to each copy; an unreachable copy is reported in its outcome, the others go on."""
    from engines.errors import EngineError

    outcomes = []
    for target in copies:
        outcome = CopyOutcome(target)
        try:
            outcome.files = sync_copy(location_text(source), target)
        except EngineError as exc:
            outcome.error = exc.message
        except OSError as exc:
            outcome.error = str(exc)
        outcomes.append(outcome)
    return outcomes


def backups_in(location: str) -> set[str] | None:
    """The backup IDs a repository holds (complete: with metadata); None when it cannot be read."""
    from engines.errors import EngineError

    try:
        store = _raw_store(location)
    except EngineError:
        return None
    try:
        return {
            path.split("/")[1]
            for path in (item.path for item in store.files())
            if backup_dir(path) is not None and path.endswith(".metadata.json")
        }
    except (EngineError, OSError):
        return None
    finally:
        store.close()
