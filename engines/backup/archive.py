"""Continuous WAL archiving: sealed segments copied into ``<repo>/wal-archive/`` with checksums.

Archiving is idempotent and crash-safe. A segment is written to a temp name, fsynced and renamed;
only then is it entered in ``manifest.json`` (its SHA-256, size, LSN and time range) and in the
``SHA256SUMS`` beside it (for ``sha256sum -c`` by hand). Archiving a segment again is a no-op;
a crash between the rename and the manifest update is healed by the next call, which finds the
file, checks its hash and lists it.

A segment that clashes with the archive (same name, other bytes; or an LSN range overlapping
another segment) is refused: it means this data dir's history diverged from the archived one
(say, it was restored to an earlier point and wrote on), and mixing the two would make point-in-
time recovery replay writes that never happened together. A segment that is a byte prefix of the
archived one (a data dir restored from a backup holds the prefix of the segment being written
when the checkpoint was taken) is the same history, and already archived.

``attach_archiver`` records a repository in a data dir; the engine then archives each segment
before it recycles it (``engines/archiving.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engines.backup.checksums import SUMS_NAME, format_sums, sha256_file
from engines.backup.copies import copies_of, sync_copies
from engines.backup.errors import ArchiveConflictError, BackupCorruptionError, RepositoryError
from engines.backup.metadata import iso_utc, now_ns
from engines.backup.mirror import stored_names, working_copy
from engines.backup.repository import Repository
from engines.errors import WalCorruptionError, map_os_error
from engines.fsutil import atomic_write_bytes, atomic_write_text, fsync_dir
from engines.wal import RecoveryMode, WalReader, list_segments

__all__ = [
    "MANIFEST_NAME",
    "ArchivedSegment",
    "WalArchive",
    "attach_archiver",
    "archive_into",
    "observe_into",
    "summarize_segment",
]

MANIFEST_NAME = "manifest.json"
OBSERVED_NAME = "observed.json"
_SEGMENT = re.compile(r"^\d{20}\.wal$")


@dataclass
class ArchivedSegment:
    """One segment of the archive, as the manifest lists it.

    ``last_lsn`` is None for a segment without a sound record; ``problem`` is the first damage
    met while reading it ("<reason> at offset N"), None when every record is sound.
    """

    name: str
    sha256: str
    size: int
    first_lsn: int
    last_lsn: int | None
    first_time_ns: int | None
    last_time_ns: int | None
    records: int
    problem: str | None = None
    archived_at: str = ""
    source_id: str = ""
    """device:inode:mtime of the file it was archived from: the same file seen again (the engine
    recycling it after a backup run archived it) is skipped without being read."""

    @property
    def lsn_range(self) -> tuple[int, int] | None:
        return None if self.last_lsn is None else (self.first_lsn, self.last_lsn)


def summarize_segment(path: Path, sha256: str) -> ArchivedSegment:
    """Read every record of one segment file: its LSN and time range and its first problem.

    The reader works on directories, so the file is read through a private directory holding
    only a link to it.
    """
    first_lsn = int(path.name[:20])
    first = last = None
    first_time = last_time = None
    count = 0
    problem = None
    with tempfile.TemporaryDirectory(prefix="drconsole-segment-") as folder:
        os.symlink(path.resolve(), Path(folder) / path.name)
        try:
            for record in WalReader(Path(folder)).records(from_lsn=0, mode=RecoveryMode.ABSOLUTE_CONSISTENCY):
                if first is None:
                    first, first_time = record.lsn, record.timestamp_ns
                last, last_time = record.lsn, record.timestamp_ns
                count += 1
        except WalCorruptionError as exc:
            problem = f"{exc.reason} at offset {exc.offset}"
    if first is not None and first != first_lsn:
        problem = problem or f"first record has LSN {first}, the file name says {first_lsn}"
    return ArchivedSegment(
        path.name,
        sha256,
        path.stat().st_size,
        first if first is not None else first_lsn,
        last,
        first_time,
        last_time,
        count,
        problem,
    )


class WalArchive:
    """The ``wal-archive/`` directory of one repository."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.path = repo.wal_archive

    # ------------------------------------------------------------------ reading
    def manifest(self) -> dict[str, ArchivedSegment]:
        """The manifest's entries by segment name ({} when nothing was archived yet).

        Raises:
            BackupCorruptionError: the manifest does not parse.
        """
        path = self.path / MANIFEST_NAME
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return {name: ArchivedSegment(**entry) for name, entry in raw["segments"].items()}
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise map_os_error(exc, f"reading {path}") from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BackupCorruptionError(
                f"WAL archive manifest {path} is damaged: {exc}",
                file=str(path),
                hint="the segments themselves are intact if their SHA256SUMS checks; re-list them with `backup verify`",
            ) from exc

    def segments(self, *, present: bool = False) -> list[ArchivedSegment]:
        """The listed segments, by first LSN (``present``: only those whose file exists)."""
        listed = sorted(self.manifest().values(), key=lambda segment: segment.first_lsn)
        if present:
            files = self.present_names()
            listed = [segment for segment in listed if segment.name in files]
        return listed

    def present_names(self) -> set[str]:
        """Segment files here, or in the store of the working copy this is (listed, not pulled)."""
        return set(self.files()) | {name for name in stored_names(self.path) if _SEGMENT.match(name)}

    def files(self) -> list[str]:
        """Names of the segment files present in the archive directory."""
        if not self.path.is_dir():
            return []
        return sorted(entry.name for entry in os.scandir(self.path) if _SEGMENT.match(entry.name))

    def pruned_leftovers(self, before: str | None = None) -> list[str]:
        """Unlisted segment files older than every listed one (or than ``before`` when none is).

        ``remove`` writes the manifest first, so a crash before its unlinks are durable leaves
        files no kept backup can use: what a prune cut short left. The next ``remove`` deletes
        them and verify does not count them as problems.
        """
        listed = self.manifest()
        oldest = min(listed) if listed else before  # zero-padded first LSNs: names sort as numbers
        if oldest is None:
            return []
        return [name for name in self.files() if name < oldest and name not in listed]

    # ------------------------------------------------------------------ archiving
    def archive_sealed(self, wal_dir: Path, *, exclude: Path | None = None) -> list[ArchivedSegment]:
        """Archive every segment of ``wal_dir`` not archived yet (``exclude``: the open one)."""
        added = []
        for segment in list_segments(wal_dir):
            if exclude is not None and segment.path == exclude:
                continue
            archived = self.archive_segment(segment.path)
            if archived is not None:
                added.append(archived)
        return added

    def archive_segment(self, source: Path) -> ArchivedSegment | None:
        """Copy one sealed segment into the archive; None when it is already there (or empty).

        Raises:
            ArchiveConflictError: the archive holds a different segment of that name or range.
        """
        source = Path(source)
        if not _SEGMENT.match(source.name):
            raise ArchiveConflictError(f"{source} is not named like a WAL segment (<20 digits>.wal)")
        try:
            info = source.stat()
            identity = f"{info.st_dev}:{info.st_ino}:{info.st_mtime_ns}"
            listed = self.manifest().get(source.name)
            if (
                listed is not None
                and listed.source_id == identity
                and listed.size == info.st_size
                and (self.path / source.name).exists()
            ):
                return None  # this very file, unchanged since it was archived
            data = source.read_bytes()
        except OSError as exc:
            raise map_os_error(exc, f"reading WAL segment {source}") from exc
        if not data:
            return None  # created by a writer that crashed before its first record: nothing in it
        digest = hashlib.sha256(data).hexdigest()
        summary = summarize_segment(source, digest)
        with self.repo.lock():
            self.path.mkdir(exist_ok=True)
            manifest = self.manifest()
            if self._already_archived(source.name, data, digest, manifest):
                return None
            self._check_overlap(summary, manifest)
            target = self.path / source.name
            if not target.exists():
                self._copy_in(target, data)
            summary.archived_at = iso_utc(now_ns())
            summary.source_id = identity
            manifest[source.name] = summary
            self._write_manifest(manifest)
        return summary

    def _already_archived(self, name: str, data: bytes, digest: str, manifest: dict[str, ArchivedSegment]) -> bool:
        target = self.path / name
        listed = manifest.get(name)
        if listed is not None and target.exists():
            if listed.sha256 == digest:
                return True
            if len(data) < listed.size and sha256_file(target, limit=len(data)) == digest:
                return True  # a restored data dir's prefix of this segment: same history
            raise ArchiveConflictError(
                f"wal-archive already holds a different {name} (sha256 {listed.sha256[:12]}..., "
                f"{listed.size} bytes; this one: {digest[:12]}..., {len(data)} bytes)",
                hint="this data dir's history diverged from the archive (restored to an earlier "
                "point?): archive it into a new repository",
            )
        if target.exists():
            # Renamed in by a run that crashed before listing it: list it if it is this segment.
            on_disk = sha256_file(target)
            if on_disk != digest:
                raise ArchiveConflictError(
                    f"wal-archive holds an unlisted, different {name}",
                    hint="run `drconsole backup verify` on the repository",
                )
        return False

    def _check_overlap(self, summary: ArchivedSegment, manifest: dict[str, ArchivedSegment]) -> None:
        span = summary.lsn_range
        if span is None:
            return
        for other in manifest.values():
            other_span = other.lsn_range
            if other.name == summary.name or other_span is None:
                continue
            if span[0] <= other_span[1] and other_span[0] <= span[1]:
                raise ArchiveConflictError(
                    f"segment {summary.name} (LSN {span[0]}..{span[1]}) overlaps archived {other.name} "
                    f"(LSN {other_span[0]}..{other_span[1]}) with other writes",
                    hint="this data dir's history diverged from the archive (restored to an earlier "
                    "point?): archive it into a new repository",
                )

    def _copy_in(self, target: Path, data: bytes) -> None:
        atomic_write_bytes(target, data)  # temp + fsync + rename + dir fsync; partial temp removed

    def _write_manifest(self, manifest: dict[str, ArchivedSegment]) -> None:
        ordered = sorted(manifest.values(), key=lambda segment: segment.first_lsn)
        body = {"version": 1, "segments": {segment.name: asdict(segment) for segment in ordered}}
        atomic_write_text(self.path / MANIFEST_NAME, json.dumps(body, indent=1) + "\n")
        atomic_write_text(self.path / SUMS_NAME, format_sums([(s.name, s.sha256) for s in ordered]))

    # ------------------------------------------------------------------ observations
    def observe(self, at_ns: int, lsn: int) -> None:
        """Remember that at ``at_ns`` the log ended at ``lsn`` (call with the repository lock held).

        Every record after ``lsn`` was written after ``at_ns``, so a point-in-time target before
        ``at_ns`` is known exactly even when no later record exists to bound it.
        """
        previous = self.observation()
        if previous is not None and previous[0] >= at_ns:
            return
        atomic_write_text(
            self.path / OBSERVED_NAME, json.dumps({"at_ns": at_ns, "at": iso_utc(at_ns), "lsn": lsn}) + "\n"
        )

    def observation(self) -> tuple[int, int] | None:
        """The newest ``(at_ns, lsn)`` observation, or None."""
        try:
            raw = json.loads((self.path / OBSERVED_NAME).read_text(encoding="utf-8"))
            return int(raw["at_ns"]), int(raw["lsn"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def remove(self, names: list[str]) -> None:
        """Drop segments from the archive (retention; call with the repository lock held)."""
        manifest = self.manifest()
        for name in names:
            manifest.pop(name, None)
        self._write_manifest(manifest)
        for name in [*names, *self.pruned_leftovers(before=max(names, default=None))]:
            (self.path / name).unlink(missing_ok=True)
        fsync_dir(self.path)


def attach_archiver(engine: Any, repo_path: str | Path) -> WalArchive:
    """Make ``engine``'s data dir archive its WAL into the repository at ``repo_path`` (created if new).

    The repository is recorded in the data dir (``Engine.record_archive``), so every later open
    keeps archiving there too. A repository without a full backup yet needs none of the segments
    sealed so far: its first full backup will cover them.
    """
    with working_copy(repo_path, create=True) as local:
        repo = Repository.create(local)
        archive = WalArchive(repo)
        sealed, _last = engine.sealed_segments()
        engine.record_archive(
            repo.location, [segment.path.name for segment in sealed] if not repo.full_backups() else []
        )
    return archive


def archive_into(repo_path: str | Path, segment: Path) -> ArchivedSegment | None:
    """``WalArchive.archive_segment`` into the repository at ``repo_path`` (local or remote)."""
    with working_copy(repo_path) as local:
        repo = Repository.open(local)
        archived = WalArchive(repo).archive_segment(segment)
        copies = copies_of(repo.marker(), repo.location)
    for outcome in sync_copies(repo.location, copies):  # the segment is archived once it is in every copy
        if outcome.error is not None:
            raise RepositoryError(
                f"copying the WAL archive to {outcome.repo} failed: {outcome.error}",
                hint="the segment stays in the data dir until every copy has it",
            )
    return archived


def observe_into(repo_path: str | Path, at_ns: int, lsn: int) -> None:
    """``WalArchive.observe`` in the repository at ``repo_path`` (local or remote), under its lock."""
    with working_copy(repo_path) as local:
        repo = Repository.open(local)
        with repo.lock():
            WalArchive(repo).observe(at_ns, lsn)
