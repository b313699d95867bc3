"""What a backup reads: an open engine (hot), or a data dir no process holds (cold).

Hot (``LiveSource``): an application or a node passes its open engine; ``engine.checkpoint()``
makes a consistent copy while writes go on, and that copy is packed.

Cold (``ColdSource``): ``backup create --data-dir`` on a data dir no process holds takes the data
dir lock and packs its files as they are, which is what the engine itself would recover from;
nothing is copied first, no WAL is replayed, no memtable is flushed. That is what makes a backup
as fast as ``tar``: opening an LSM dir with a large WAL replays all of it, and a checkpoint of a
COW file copies the whole file before packing reads it again. Only the files that make up the
data are packed (the store's files, the WAL segments the store does not cover, the marker without
its repository record), not the lock, the quarantine or the archive status. A data dir whose WAL
does not end cleanly (a writer killed mid-append) is backed up hot instead: opening it cuts the
torn tail into quarantine first, as every open does.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engines.archiving import record_repository
from engines.backup.pack import DATA_PREFIX, Member, members_of
from engines.errors import CorruptionError, EngineError, WalCorruptionError
from engines.locking import acquire_data_dir_lock
from engines.marker import MARKER_NAME, Marker, detect_backend, read_marker
from engines.wal import SegmentInfo, list_segments
from engines.wal.files import segment_tail

if TYPE_CHECKING:
    from engines.base import Engine

__all__ = ["Snapshot", "LiveSource", "ColdSource", "hold_data_dir", "STORE_FILES"]

WAL_DIR = "wal"
# The files of each backend's store, relative to the data dir (engines/<backend>/engine.py).
STORE_FILES = {
    "cow": ("data.cow", "snapshots"),
    "lsm": ("manifest.json", "sstables"),
    "rocksdb": ("rocksdb", "rocksdb.state.json"),
}


@dataclass
class Snapshot:
    """A consistent view to pack: its members, the LSN it holds exactly, and the first LSN of its WAL."""

    members: list[Member]
    lsn: int
    lsn_start: int
    lsn_end_time_ns: int | None  # the time of record ``lsn`` when known


def _needed(segments: list[SegmentInfo], covered: int) -> list[SegmentInfo]:
    """Segments holding a record after ``covered`` (a segment's records end where the next begins)."""
    return [
        segment
        for index, segment in enumerate(segments)
        if index + 1 >= len(segments) or segments[index + 1].first_lsn - 1 > covered
    ]


class LiveSource:
    """An open engine: a checkpoint copy is packed; its WAL is sealed through the engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.backend = engine.backend
        self.node_name = engine.marker.node_name
        self.path = engine.path
        self.marker = engine.marker
        self.wal_dir = engine.wal_dir

    def sealed(self, *, seal: bool) -> tuple[list[SegmentInfo], int]:
        return self.engine.sealed_segments(seal=seal)

    def snapshot(self, scratch: Path) -> Snapshot:
        lsn = self.engine.checkpoint(scratch)
        segments = [segment for segment in list_segments(scratch / WAL_DIR) if segment.size > 0]
        when = None
        if segments and lsn:
            try:
                tail = segment_tail(segments[-1])
                when = tail[1] if tail is not None and tail[0] == lsn else None
            except CorruptionError:
                when = None  # a damaged tail in the copy (the engine replays what it can)
        return Snapshot(members_of(scratch), lsn, segments[0].first_lsn if segments else lsn, when)

    def record(self, repo: Path | str, done: list[str]) -> None:
        self.engine.record_archive(repo, done)


class ColdSource:
    """A data dir held by nobody but us (its lock): packed in place. Build with ``cold_source``."""

    def __init__(
        self, path: Path, marker: Marker, segments: list[SegmentInfo], last: tuple[int, int], covered: int
    ) -> None:
        self.path = path
        self.marker = marker
        self.backend = marker.backend
        self.node_name = marker.node_name
        self.wal_dir = path / WAL_DIR
        self._segments = segments
        self._last = last
        self._covered = covered

    def sealed(self, *, seal: bool) -> tuple[list[SegmentInfo], int]:
        """Every segment: no writer appends to one it did not create, so all of them are sealed."""
        return list(self._segments), self._last[0]

    def snapshot(self, scratch: Path) -> Snapshot:
        needed = _needed(self._segments, self._covered)
        root, *store = members_of(self.path, STORE_FILES[self.backend])
        # The marker as a copy must have it: no repository record (a restored dir is a new history).
        marker = self.marker.model_copy(update={"archive": None})
        content = (marker.model_dump_json(indent=2) + "\n").encode("utf-8")
        marker_time = os.stat(self.path / MARKER_NAME).st_mtime
        wal_info = os.stat(self.wal_dir)
        members = [
            root,
            Member(f"{DATA_PREFIX}/{MARKER_NAME}", 0o644, marker_time, len(content), content=content),
            *store,
            Member(f"{DATA_PREFIX}/{WAL_DIR}", stat.S_IMODE(wal_info.st_mode), wal_info.st_mtime, directory=True),
            *members_of(self.path, [f"{WAL_DIR}/{segment.path.name}" for segment in needed])[1:],
        ]
        lsn_start = needed[0].first_lsn if needed else self._last[0]
        return Snapshot(members, self._last[0], lsn_start, self._last[1])

    def record(self, repo: Path | str, done: list[str]) -> None:
        record_repository(self.path, self.wal_dir, self.marker, repo, done)


def _covered_floor(backend: str, path: Path) -> int:
    """A lower bound of the LSN the store holds on its own (without its WAL), read from its files.

    A bound from below only keeps more WAL in the backup than needed, never less.
    """
    if backend == "lsm":
        from engines.lsm.manifest import load_manifest

        return load_manifest(path).durable_lsn
    if backend == "rocksdb":
        state = path / "rocksdb.state.json"
        if not state.exists():
            return 0
        return int(json.loads(state.read_text(encoding="utf-8"))["durable_lsn"])
    if backend == "cow":
        from engines.cow.meta import read_meta_slots

        fd = os.open(path / "data.cow", os.O_RDONLY | os.O_CLOEXEC)
        try:
            slots = read_meta_slots(fd, "data.cow", None)
        finally:
            os.close(fd)
        return min(meta.lsn for meta in slots.metas)  # the open may fall back to the older meta
    raise EngineError(f"unknown backend {backend!r}")


def hold_data_dir(data_dir: Path) -> tuple[int, ColdSource | None]:
    """Take ``data_dir``'s lock: (its descriptor, to close when done; the cold source, or None when
    the data dir must be opened instead).

    Raises:
        NotFoundError: ``data_dir`` is missing, or no data dir (checked first: the lock file
            would be left in a directory that is not ours, or the error would be about the lock).
        LockedError: another process holds the data dir.
    """
    detect_backend(data_dir)
    fd = acquire_data_dir_lock(data_dir, hint="stop the process that holds it, or let it take the backup")
    try:
        return fd, _plan(data_dir)
    except BaseException:
        os.close(fd)
        raise


def _plan(data_dir: Path) -> ColdSource | None:
    try:
        marker = read_marker(data_dir)
        if marker is None or marker.backend not in STORE_FILES:
            return None  # the engine's open detects the backend from the files and says what is wrong
        segments = [segment for segment in list_segments(data_dir / WAL_DIR) if segment.size > 0]
        if not segments or not all((data_dir / name).exists() for name in STORE_FILES[marker.backend][:1]):
            return None
        last = segment_tail(segments[-1])
        if last is None:
            return None
        covered = _covered_floor(marker.backend, data_dir)
    except (WalCorruptionError, CorruptionError, EngineError, OSError, ValueError, KeyError):
        return None  # the engine's open deals with it (a torn tail) or reports it
    if covered > last[0]:
        return None  # the store is ahead of its WAL's end: only the engine knows what it holds
    return ColdSource(data_dir, marker, segments, last, covered)
