"""Cutting the log at its first problem without losing a byte: the cut-off part goes to quarantine.

The order makes every crash point safe: the tail is copied into quarantine and fsynced before
the segment is shortened (by an atomic replace), and later segments move only after that. A run
cut short is finished by running it again: what is left then shows as the first problem.
Run it with the writer closed; it never deletes anything.
"""

from __future__ import annotations

import errno
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines import fsio
from engines.errors import map_os_error
from engines.fsutil import atomic_write_bytes, fsync_dir, fsync_file, mkdir_durable
from engines.wal.reader import WalReader
from engines.wal.segments import list_segments

__all__ = ["TruncateReport", "truncate_at_first_bad"]


@dataclass
class TruncateReport:
    """What a truncation did.

    Attributes:
        segment: the segment holding the first problem (``None``: no problem, nothing changed).
        offset: where it was cut (the damaged record's first byte).
        quarantine: the quarantine directory used, if anything moved.
        moved: every file now in quarantine: the cut-off tail (``<segment>.tail-at-<offset>``)
            and the later segments (or the whole damaged segment when cut at offset 0).
        bytes_moved: their total size.
        records_kept: records left in the log.
        last_lsn: the last LSN left in the log.
    """

    segment: str | None
    offset: int | None
    quarantine: Path | None
    moved: list[Path] = field(default_factory=list)
    bytes_moved: int = 0
    records_kept: int = 0
    last_lsn: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "offset": self.offset,
            "quarantine": None if self.quarantine is None else str(self.quarantine),
            "moved": [str(path) for path in self.moved],
            "bytes_moved": self.bytes_moved,
            "records_kept": self.records_kept,
            "last_lsn": self.last_lsn,
        }


def truncate_at_first_bad(wal_dir: Path, quarantine_dir: Path) -> TruncateReport:
    """Cut the log at its first problem; quarantine everything after the cut.

    The segment holding the problem keeps the bytes in front of the damaged record; the rest of
    it and every later segment move into ``quarantine_dir`` (created if needed). A problem at
    offset 0 moves the whole segment: the writer never leaves empty segments either.

    Raises:
        DiskFullError, StorageIOError: the file system refused; what was done so far is safe and
            a second run completes it.
    """
    wal_dir = Path(wal_dir)
    quarantine_dir = Path(quarantine_dir)
    validation = WalReader(wal_dir).validate()
    problem = validation.corruption
    if problem is None:
        return TruncateReport(None, None, None, [], 0, validation.records, validation.last_lsn)
    segments = list_segments(wal_dir)
    names = [segment.path.name for segment in segments]
    index = names.index(problem.segment)
    damaged = segments[index].path
    later = [segment.path for segment in segments[index + 1 :]]
    moved: list[Path] = []
    bytes_moved = 0
    try:
        mkdir_durable(quarantine_dir)
        if problem.offset == 0:
            later.insert(0, damaged)
        else:
            data = damaged.read_bytes()
            tail = data[problem.offset :]
            tail_path = _free_name(quarantine_dir, f"{damaged.name}.tail-at-{problem.offset}")
            _write_durably(tail_path, tail)
            moved.append(tail_path)
            bytes_moved += len(tail)
            atomic_write_bytes(damaged, data[: problem.offset])
        for path in later:
            size = path.stat().st_size
            moved.append(_move_durably(path, _free_name(quarantine_dir, path.name)))
            bytes_moved += size
        if later:
            fsync_dir(wal_dir)
    except OSError as exc:
        raise map_os_error(exc, f"truncating the WAL in {wal_dir}") from exc
    return TruncateReport(
        segment=problem.segment,
        offset=problem.offset,
        quarantine=quarantine_dir,
        moved=moved,
        bytes_moved=bytes_moved,
        records_kept=validation.records,
        last_lsn=validation.last_lsn,
    )


def _free_name(directory: Path, name: str) -> Path:
    """``directory/name``, or ``name.1``, ``name.2``... if taken: quarantine never overwrites."""
    candidate = directory / name
    number = 0
    while candidate.exists():
        number += 1
        candidate = directory / f"{name}.{number}"
    return candidate


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "xb") as handle:
        handle.write(data)
        handle.flush()
        fsio.fsync(handle.fileno())
    fsync_dir(path.parent)


def _move_durably(source: Path, target: Path) -> Path:
    """Rename ``source`` to ``target``; across file systems, copy and fsync before unlinking.

    ``fsutil.move_to_quarantine`` would overwrite a file of the same name and does not fsync a
    cross-device copy before removing the source, hence this variant.
    """
    try:
        fsio.rename(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.copy2(source, target)
        fsync_file(target)
        fsync_dir(target.parent)
        source.unlink()
        return target
    fsync_dir(target.parent)
    return target
