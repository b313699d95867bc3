"""Leveled compaction: choosing what to compact, and merging it into new tables.

Choice (as LevelDB and RocksDB score levels): L0 scores ``tables / l0_trigger``; level ``n >= 1``
scores ``bytes / (level1_bytes * multiplier**(n-1))``. The highest score >= 1 is compacted: all of
L0 with the L1 tables they overlap, or one table of level ``n`` (round robin over the key space)
with the level ``n+1`` tables it overlaps. Tombstones are dropped when no deeper level holds
the key range. Tables are never moved between levels without being rewritten, so a table's
level (written in its properties) stays true, which is what lets the manifest be rebuilt from
the tables alone.

Running a compaction writes its outputs, fsyncs them and the directory, and returns their
metadata; the caller commits them to the manifest. Outputs carry their lineage (the inputs
they replace, their position among the outputs and whether they are the last) so that a
manifest rebuild can tell a finished compaction from an interrupted one.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engines.errors import CorruptionError, DiskFullError
from engines.fsutil import fsync_dir
from engines.lsm.merge import merge_chunks
from engines.lsm.settings import LsmSettings
from engines.lsm.sstable_writer import TableWriter
from engines.lsm.table_meta import SSTABLE_DIR, TableMeta
from engines.lsm.version import Table, Version

__all__ = [
    "CompactionJob",
    "CompactionResult",
    "pick_compaction",
    "full_compaction",
    "level_compaction",
    "run_compaction",
    "free_bytes",
    "CompactionAborted",
    "DISK_MARGIN_BYTES",
]

DISK_MARGIN_BYTES = 1 * 2**20


class CompactionAborted(Exception):
    """The engine is closing; the compaction stopped and removed its partial outputs."""


def free_bytes(path: Path) -> int:
    """Free bytes on the file system holding ``path`` (a seam for tests)."""
    return shutil.disk_usage(path).free


@dataclass
class CompactionJob:
    level: int
    output_level: int
    inputs: list[Table]  # newest first: L0 (newest first), then level, then output level
    drop_tombstones: bool
    reason: str = "compaction"

    @property
    def input_bytes(self) -> int:
        return sum(table.meta.size for table in self.inputs)


@dataclass
class CompactionResult:
    outputs: list[TableMeta]
    input_bytes: int
    output_bytes: int
    seconds: float
    entries_in: int = 0
    entries_out: int = 0
    dropped_tombstones: int = 0
    notes: list[str] = field(default_factory=list)


def _overlapping(level: list[Table], low: bytes, high: bytes) -> list[Table]:
    return [table for table in level if table.meta.max_key >= low and table.meta.min_key <= high]


def _is_bottom(version: Version, output_level: int, low: bytes, high: bytes) -> bool:
    return not any(_overlapping(level, low, high) for level in version.levels[output_level + 1 :])


def _range(tables: list[Table]) -> tuple[bytes, bytes]:
    return min(table.meta.min_key for table in tables), max(table.meta.max_key for table in tables)


def level_compaction(version: Version, level: int, pointer: bytes | None = None) -> CompactionJob | None:
    """Compact ``level`` into the next: all of L0, or the table after ``pointer`` of a deeper level."""
    levels = version.levels
    if level >= len(levels) - 1 or not levels[level]:
        return None
    if level == 0:
        chosen = list(levels[0])
    else:
        candidates = [table for table in levels[level] if pointer is None or table.meta.min_key > pointer]
        chosen = [(candidates or levels[level])[0]]
    low, high = _range(chosen)
    if level == 0:
        # L0 tables overlap each other: widen to everything L1 holds in that range.
        below = _overlapping(levels[1], low, high)
    else:
        below = _overlapping(levels[level + 1], low, high)
    inputs = chosen + below
    low, high = _range(inputs)
    return CompactionJob(
        level=level, output_level=level + 1, inputs=inputs, drop_tombstones=_is_bottom(version, level + 1, low, high)
    )


def pick_compaction(version: Version, settings: LsmSettings, pointers: dict[int, bytes]) -> CompactionJob | None:
    """The most urgent compaction, or None when every level is within its target."""
    levels = version.levels
    scores: list[tuple[float, int]] = []
    if levels[0]:
        scores.append((len(levels[0]) / settings.l0_trigger, 0))
    for number in range(1, len(levels) - 1):
        size = sum(table.meta.size for table in levels[number])
        if size:
            scores.append((size / settings.level_target(number), number))
    for score, level in sorted(scores, reverse=True):
        if score < 1:
            break
        job = level_compaction(version, level, pointers.get(level))
        if job is not None and not any(table.damaged for table in job.inputs):
            return job
    return None


def full_compaction(version: Version) -> CompactionJob | None:
    """Everything into the bottom level (the guide's forced compaction for disk space).

    None when there is nothing to gain: all tables already sit in the bottom level without
    tombstones and without overlapping each other.
    """
    bottom = len(version.levels) - 1
    tables = version.tables()
    if not tables:
        return None
    if all(table.meta.level == bottom for table in tables) and not any(t.meta.tombstones for t in tables):
        return None
    return CompactionJob(level=0, output_level=bottom, inputs=tables, drop_tombstones=True, reason="full compaction")


def run_compaction(
    job: CompactionJob,
    *,
    data_dir: Path,
    settings: LsmSettings,
    allocate: Callable[[], int],
    release: Callable[[int], None],
    abort: threading.Event | None = None,
) -> CompactionResult:
    """Merge ``job.inputs`` into new tables at ``job.output_level``; nothing is committed here.

    Raises:
        DiskFullError: not enough free space for the output (checked first), or ENOSPC while
            writing; every partial output is removed.
        CorruptionError: an input block failed its checksum; partial outputs are removed.
        CompactionAborted: ``abort`` was set (the engine is closing).
    """
    damaged = [table for table in job.inputs if table.damaged]
    if damaged:
        raise CorruptionError(
            f"cannot compact: {damaged[0].meta.relative_path} is damaged",
            file=damaged[0].meta.relative_path,
            hint="quarantine the damaged table first (drconsole playbook recover-lsm)",
        )
    directory = Path(data_dir) / SSTABLE_DIR
    needed = job.input_bytes + DISK_MARGIN_BYTES
    available = free_bytes(directory)
    if available < needed:
        raise DiskFullError(
            f"compaction needs up to {needed} bytes of free space in {directory}, only {available} are free",
            hint="free disk space, then compact again",
        )
    started = time.monotonic()
    inputs = [table.meta for table in job.inputs]
    lineage_inputs = sorted(meta.number for meta in inputs)
    min_lsn = min(meta.min_lsn for meta in inputs)
    max_lsn = max(meta.max_lsn for meta in inputs)
    durable_lsn = max(meta.durable_lsn for meta in inputs)
    outputs: list[TableMeta] = []
    numbers: list[int] = []
    writer: TableWriter | None = None
    compaction_id = ""
    dropped = 0
    target = settings.file_bytes

    def new_writer() -> TableWriter:
        nonlocal compaction_id
        number = allocate()
        numbers.append(number)
        compaction_id = compaction_id or f"c{number}"
        return TableWriter(
            directory,
            number,
            level=job.output_level,
            block_bytes=settings.block_bytes,
            compression=settings.compression,
            compression_level=settings.compression_level,
            bloom_bits_per_key=settings.bloom_bits_per_key,
        )

    def finish(current: TableWriter, last: bool) -> None:
        outputs.append(
            current.finish(
                min_lsn=min_lsn,
                max_lsn=max_lsn,
                durable_lsn=durable_lsn,
                lineage={"compaction": compaction_id, "inputs": lineage_inputs, "output": len(outputs), "last": last},
            )
        )

    try:
        for keys, values in merge_chunks([table.chunks(None, None) for table in job.inputs]):
            if abort is not None and abort.is_set():
                raise CompactionAborted("engine closing")
            if job.drop_tombstones and None in values:
                kept = [index for index, value in enumerate(values) if value is not None]
                dropped += len(keys) - len(kept)
                keys = [keys[index] for index in kept]
                values = [values[index] for index in kept]
                if not keys:
                    continue
            if writer is not None and writer.file_bytes >= target:
                finish(writer, last=False)
                writer = None
            if writer is None:
                writer = new_writer()
            writer.add_many(keys, values)
        if writer is not None:
            finish(writer, last=True)
            writer = None
        if outputs:
            fsync_dir(directory)
    except BaseException:
        if writer is not None:
            writer.abandon()
        for meta in outputs:
            (directory / meta.name).unlink(missing_ok=True)  # our own uncommitted output
        for number in numbers:
            release(number)
        raise
    output_bytes = sum(meta.size for meta in outputs)
    return CompactionResult(
        outputs=outputs,
        input_bytes=job.input_bytes,
        output_bytes=output_bytes,
        seconds=time.monotonic() - started,
        entries_in=sum(meta.entries for meta in inputs),
        entries_out=sum(meta.entries for meta in outputs),
        dropped_tombstones=dropped,
    )
