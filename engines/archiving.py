"""Archive before recycle: the WAL continuity every process that opens a data dir keeps.

A data dir that records a backup repository (``Marker.archive``, written by the first backup into
it, by ``node serve --archive`` or by ``attach_archiver``) never recycles a WAL segment before the
segment is in that repository's ``wal-archive/``, whichever process opened it: the CLI, a node or
an application embedding the engine. PostgreSQL's ``archive_status`` is the model
(``engines.wal.archive_status``): a sealed segment is ``.ready`` until archived, then ``.done``,
and only ``.done`` segments are recycled.

Every read-write open archives its ready segments when it flushes or closes (a node also on its
``--archive-timeout`` timer); one that cannot reach the repository leaves them for the next one.
Meanwhile the WAL is held, not lost: ``Engine.stats().archive`` says why and how much, and once
the WAL held passes the ``wal_hold_max_bytes`` ceiling, writes are refused (``WalHeldError``)
before the disk fills, until an archive attempt succeeds again.

A data dir copied or moved elsewhere (its path is no longer the one recorded) archives nothing
(a drill's sandbox must not write into production's repository) and recycles nothing unarchived;
a standby (``suspend``) recycles freely: its WAL is its primary's, which the primary archives.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engines.backup.location import location_text
from engines.errors import EngineError, WalHeldError
from engines.marker import ArchiveRecord, Marker, read_marker, write_marker
from engines.wal import archive_status
from engines.wal.segments import SegmentInfo, first_timestamp_ns

__all__ = [
    "ArchiveKeeper",
    "ArchiveState",
    "DEFAULT_HOLD_MAX_BYTES",
    "inspect_archive",
    "RETRY_SECONDS",
    "record_repository",
]

RETRY_SECONDS = 5.0  # a refused write retries archiving at most this often
DEFAULT_HOLD_MAX_BYTES = 2 * 2**30  # EngineOptions.wal_hold_max_bytes


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns / 1e9)) + f".{ns // 1000 % 1_000_000:06d}Z"


def record_repository(
    data_dir: Path, wal_dir: Path, marker: Marker, repo: Path | str, done: Iterable[str] = ()
) -> ArchiveRecord | None:
    """Record ``repo`` in ``data_dir``'s marker and mark ``done`` segments; the new record, or None if unchanged.

    Call with the data dir held (its lock, or an open read-write engine's write lock). ``done``
    names the sealed segments that need no archiving (just archived, or covered by the full backup
    being taken into a repository that has none yet); every other sealed segment is ready.
    Recording another repository, or the same one from a new path (a copy, a moved dir), starts
    the statuses afresh.
    """
    record = ArchiveRecord(
        repo=location_text(repo),
        data_dir=os.path.abspath(data_dir),
        since=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    current = marker.archive
    same = current is not None and (current.repo, current.data_dir) == (record.repo, record.data_dir)
    if not same:
        archive_status.reset(wal_dir)
    for name in done:
        if (wal_dir / name).exists():
            archive_status.mark(wal_dir, name, archive_status.DONE)
    if same:
        return None
    on_disk = read_marker(data_dir) or marker
    on_disk.archive = record
    write_marker(data_dir, on_disk)
    marker.archive = record
    return record


@dataclass
class ArchiveState:
    """Where a data dir's WAL archiving stands (``EngineStats.archive``; ``/health`` carries it too).

    ``state``: ``ok`` (everything sealed is archived), ``pending`` (sealed segments wait for the
    next archiver: a process that closes, flushes or, on a node, the archive timer), ``failing``
    (the last attempt failed: ``error`` says why; the segments stay), ``refusing`` (the WAL held
    reached ``ceiling_bytes``: writes are refused until the archive catches up), ``held`` (the
    data dir was copied or moved since its repository was recorded: it archives nothing and
    recycles nothing unarchived until a backup records a repository for it), ``standby`` (a
    standby's WAL is its primary's, archived by the primary).
    """

    repo: str
    state: str
    error: str | None = None
    held_segments: int = 0
    held_bytes: int = 0
    ceiling_bytes: int = 0
    lag_seconds: float = 0.0
    """Age of the oldest write not yet in the archive (0 when everything written is archived)."""
    archived_lsn: int | None = None
    """Every record up to this LSN is in the archive (None: not known in this process yet)."""
    last_archived_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class ArchiveKeeper:
    """The archive-before-recycle rule for one open read-write engine. Thread-safe."""

    def __init__(
        self,
        data_dir: Path,
        wal_dir: Path,
        record: ArchiveRecord | None,
        ceiling_bytes: int,
        retry: Callable[[], object] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.wal_dir = Path(wal_dir)
        self.record = record
        self.ceiling_bytes = ceiling_bytes
        self.error: str | None = None
        """Why the last archive attempt failed; None once one succeeds."""
        self.refusal: str | None = None
        """Set while writes are refused (the WAL held passed the ceiling)."""
        self.suspended: str | None = None
        self.archived_lsn: int | None = None
        self.last_archived_ns: int | None = None
        self.held_bytes = 0
        self.held_segments = 0
        self._oldest_held_ns: int | None = None
        self._first_ns: dict[str, int | None] = {}
        self._lock = threading.Lock()  # one archiver at a time (a node's timer and a flush)
        self._last_attempt = 0.0
        self._retry = retry  # archives what is pending now (a refused write calls it)

    # ------------------------------------------------------------------ what applies
    @property
    def repo(self) -> Path | None:
        return None if self.record is None else Path(self.record.repo)

    @property
    def moved(self) -> bool:
        """The data dir is not where its repository was recorded (a copy, or moved)."""
        if self.record is None:
            return False
        return os.path.realpath(self.record.data_dir) != os.path.realpath(self.data_dir)

    @property
    def keeps(self) -> bool:
        """Whether a segment must be archived before it is recycled."""
        return self.record is not None and self.suspended is None

    @property
    def active(self) -> bool:
        """Whether this process archives into the recorded repository."""
        return self.keeps and not self.moved

    def suspend(self, reason: str) -> None:
        """Stop archiving and holding (a standby); ``resume`` (or a new record) undoes it."""
        self.suspended = reason
        self.refusal = None

    def resume(self) -> None:
        self.suspended = None

    def adopt(self, record: ArchiveRecord) -> None:
        """A repository was (re)recorded for the data dir: start over with it."""
        with self._lock:
            self.record = record
            self.suspended = None
            self.error = None
            self.refusal = None
            self.archived_lsn = None
            self._first_ns.clear()

    # ------------------------------------------------------------------ the rule
    def note_sealed(self, path: Path) -> None:
        """The WAL writer sealed ``path``: it is ``.ready`` (a lost marker counts as ready too)."""
        if not self.keeps:
            return
        try:
            archive_status.mark(self.wal_dir, path.name, archive_status.READY)
        except OSError:
            pass  # "no status" is read as ready: the marker is for people and tools, not the rule

    def recyclable(self, segment: SegmentInfo, statuses: dict[str, str]) -> bool:
        return not self.keeps or statuses.get(segment.path.name) == archive_status.DONE

    def archive(self, sealed: list[SegmentInfo], end_lsn: int, *, observed: tuple[int, int] | None = None) -> int:
        """Archive every sealed segment not yet ``.done``, oldest first; how many were archived.

        ``end_lsn`` is the last LSN the sealed segments can hold (the open segment's first LSN - 1,
        or the writer's last LSN). A failure stops at that segment (the archive stays contiguous)
        and is kept in ``error``; nothing is raised: the caller's writes must not fail for it.
        ``observed`` = (time, LSN): at that time the log ended at that LSN (taken under the write
        lock); once everything up to it is archived, the archive records it, so a point-in-time
        target up to that moment is inside the recoverable window even with no later write.
        """
        if not self.active:
            self.refresh(sealed)
            return 0
        with self._lock:
            self._last_attempt = time.monotonic()
            statuses = archive_status.statuses(self.wal_dir)
            archived = 0
            for index, segment in enumerate(sealed):
                name = segment.path.name
                last = (sealed[index + 1].first_lsn if index + 1 < len(sealed) else end_lsn + 1) - 1
                if statuses.get(name) != archive_status.DONE:
                    failure = self._archive_one(segment)
                    if failure is not None:
                        self.error = failure
                        break
                    archive_status.mark(self.wal_dir, name, archive_status.DONE)
                    statuses[name] = archive_status.DONE
                    archived += 1
                    self.last_archived_ns = time.time_ns()
                self.archived_lsn = max(self.archived_lsn or 0, last)
            else:
                self.error = None
                if observed is not None and observed[1] <= end_lsn:
                    self._observe(*observed)
            self.refresh(sealed, statuses)
            return archived

    def _observe(self, at_ns: int, lsn: int) -> None:
        from engines.backup.archive import observe_into

        try:
            observe_into(self.repo, at_ns, lsn)  # type: ignore[arg-type]
        except (EngineError, OSError):
            pass  # only the window's end is less precise; the next observation makes up for it

    def _archive_one(self, segment: SegmentInfo) -> str | None:
        """None when ``segment`` is in the archive now; else why not."""
        if segment.size == 0:
            return None  # created by a writer killed before its first record: nothing to keep
        from engines.backup.archive import archive_into  # the backup package loads only when needed

        repo = self.repo
        try:
            archive_into(repo, segment.path)  # type: ignore[arg-type]
        except (EngineError, OSError) as exc:
            if not segment.path.exists():
                return None  # recycled by another path meanwhile; nothing of ours to keep
            message = exc.message if isinstance(exc, EngineError) else str(exc)
            return f"archiving {segment.path.name} into {repo} failed: {message}"
        return None

    def forget(self, segment: SegmentInfo) -> None:
        archive_status.forget(self.wal_dir, segment.path.name)
        self._first_ns.pop(segment.path.name, None)

    # ------------------------------------------------------------------ the ceiling
    def check_writable(self) -> None:
        """Raise ``WalHeldError`` while the WAL held is past the ceiling (after a retry, at most every few s)."""
        if self.refusal is None:
            return
        if time.monotonic() - self._last_attempt >= RETRY_SECONDS and self._retry is not None:
            self._retry()
            if self.refusal is None:
                return
        raise WalHeldError(
            self.refusal,
            hint=f"make {self.repo} reachable again (the next flush, close or "
            "node archive timer archives the held WAL), or raise "
            "wal_hold_max_bytes",
        )

    def refresh(self, sealed: list[SegmentInfo], statuses: dict[str, str] | None = None) -> None:
        """Recount the WAL held for the archive and update the refusal."""
        if not self.keeps:
            self.held_bytes = self.held_segments = 0
            self._oldest_held_ns = None
            self.refusal = None
            return
        if statuses is None:
            statuses = archive_status.statuses(self.wal_dir)
        held = [segment for segment in sealed if statuses.get(segment.path.name) != archive_status.DONE]
        self.held_bytes = sum(segment.size for segment in held)
        self.held_segments = len(held)
        self._oldest_held_ns = self._first_time(held[0]) if held else None
        if self.ceiling_bytes and self.held_bytes > self.ceiling_bytes:
            self.refusal = (
                f"writes refused: {self.held_bytes} bytes of WAL in {self.held_segments} segment(s) "
                f"wait for the archive {self.repo} (ceiling {self.ceiling_bytes} bytes)"
                + (f": {self.error}" if self.error else "")
            )
        else:
            self.refusal = None

    def _first_time(self, segment: SegmentInfo) -> int | None:
        name = segment.path.name
        if name not in self._first_ns:
            self._first_ns[name] = first_timestamp_ns(segment.path)
        return self._first_ns[name]

    # ------------------------------------------------------------------ reporting
    def state(self, open_segment_started_ns: int | None, now_ns: int | None = None) -> ArchiveState | None:
        """What ``stats()`` and ``/health`` say; None when no repository is recorded."""
        if self.record is None:
            return None
        now = now_ns if now_ns is not None else time.time_ns()
        oldest = self._oldest_held_ns
        if oldest is None:
            oldest = open_segment_started_ns
        lag = 0.0 if oldest is None or not self.keeps else max(0.0, (now - oldest) / 1e9)
        if self.suspended is not None:
            state = "standby"
        elif self.moved:
            state = "held"
        elif self.refusal is not None:
            state = "refusing"
        elif self.error is not None:
            state = "failing"
        elif self.held_segments:
            state = "pending"
        else:
            state = "ok"
        error = self.error
        if error is not None and self.held_segments:
            error += f"; {self.held_bytes} bytes of WAL in {self.held_segments} segment(s) held until it succeeds"
        if state == "held":
            error = (
                f"this data dir is not at {self.record.data_dir}, where its repository was recorded (a "
                "copy?): it archives nothing until `backup create` records a repository for it"
            )
        if state == "refusing":
            error = self.refusal
        return ArchiveState(
            repo=self.record.repo,
            state=state,
            error=error,
            held_segments=self.held_segments,
            held_bytes=self.held_bytes,
            ceiling_bytes=self.ceiling_bytes,
            lag_seconds=round(lag, 3),
            archived_lsn=self.archived_lsn,
            last_archived_at=None if self.last_archived_ns is None else _iso(self.last_archived_ns),
        )


def inspect_archive(data_dir: Path) -> ArchiveState | None:
    """The archive state of a data dir read from its files alone (no engine, nothing written).

    For a console looking at a data dir it does not serve: every segment counts as sealed (a
    process writing the newest one makes the figures a little high, never low).
    """
    from engines.wal.segments import list_segments  # here, not at the top: engines.wal imports nothing of ours

    marker = read_marker(data_dir)
    if marker is None or marker.archive is None:
        return None
    wal_dir = Path(data_dir) / "wal"
    ceiling = marker.options.get("wal_hold_max_bytes", DEFAULT_HOLD_MAX_BYTES)
    keeper = ArchiveKeeper(Path(data_dir), wal_dir, marker.archive, ceiling if isinstance(ceiling, int) else 0)
    keeper.refresh([segment for segment in list_segments(wal_dir) if segment.size > 0])
    return keeper.state(None)
