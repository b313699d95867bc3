"""Repair primitives for the playbooks: quarantine one table, rebuild the manifest from the tables.

Both are best effort and never silent: whatever they take out of the live set is moved (never
deleted) under ``<data-dir>/.quarantine/<ts>-<label>/`` and listed in the report, with the key
range and LSN range it held, so a playbook can decide whether the WAL (``wal_covers``, then
``LsmEngine.restore_from_wal``) or a backup has to fill the gap.

``rebuild_manifest`` needs only the tables: each records its level, key range, LSN range and, for
compaction output, its lineage (the inputs it replaced). Where both generations of a compaction
are on disk, one is redundant and goes to quarantine (see ``_resolve_lineage``); the levels come
from the tables' own records, with overlaps inside a level resolved towards the newer table.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.errors import EngineError, InvalidArgumentError, NotFoundError
from engines.fsutil import move_to_quarantine, new_quarantine
from engines.locking import data_dir_locked
from engines.lsm.manifest import MANIFEST_NAME, Edit, Manifest, load_manifest, save_manifest
from engines.lsm.settings import LsmSettings
from engines.lsm.sstable_reader import TableCorruptionError, TableReader, open_table
from engines.lsm.table_meta import SSTABLE_DIR, TEMP_SUFFIX, TableMeta, table_name, table_number
from engines.lsm.verify import verify_table
from engines.lsm.version import sort_level
from engines.records import Record
from engines.reports import RepairReport, VerifyReport

__all__ = ["QuarantinedTable", "LsmRepairReport", "quarantine_sstable", "rebuild_manifest"]


@dataclass(kw_only=True)
class QuarantinedTable(Record):
    """A table taken out of the live set, and what it held (None where it could not be read)."""

    file: str
    moved_to: str
    reason: str
    level: int | None = None
    min_key: str | None = None  # hex
    max_key: str | None = None
    min_lsn: int | None = None
    max_lsn: int | None = None
    entries: int | None = None
    salvaged_into: str | None = None  # the new table holding its sound blocks (engines/lsm/salvage.py)
    salvaged_entries: int | None = None
    lost_entries: int | None = None  # in its damaged blocks, when it was salvaged
    lost_keys: str | None = None  # the damaged blocks' key ranges, when it was salvaged


@dataclass(kw_only=True)
class LsmRepairReport(RepairReport):
    backend: str = "lsm"
    tables: list[QuarantinedTable] = field(default_factory=list)
    durable_lsn: int | None = None
    wal_first_lsn: int | None = None
    wal_covers: bool | None = None  # the WAL reaches back to every quarantined table's first LSN
    lost_lsn_ranges: list[tuple[int, int]] = field(default_factory=list)


@contextmanager
def _data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data dir's lock, as an engine open does: refuse while a node has it open."""
    with data_dir_locked(data_dir, hint="stop the node, or pass its open engine instead of the path"):
        yield


def _wal_first_lsn(data_dir: Path) -> int | None:
    from engines.wal import list_segments

    segments = [segment for segment in list_segments(Path(data_dir) / "wal") if segment.size > 0]
    return segments[0].first_lsn if segments else None


def _number_of(file: str | os.PathLike[str]) -> int:
    number = table_number(Path(file).name)
    if number is None:
        raise InvalidArgumentError(f"{file} is not an SSTable name (expected NNNNNN.sst)")
    return number


def _describe(meta: TableMeta, moved_to: Path, reason: str) -> QuarantinedTable:
    return QuarantinedTable(
        file=meta.relative_path,
        moved_to=str(moved_to),
        reason=reason,
        level=meta.level,
        min_key=meta.min_key.hex(),
        max_key=meta.max_key.hex(),
        min_lsn=meta.min_lsn,
        max_lsn=meta.max_lsn,
        entries=meta.entries,
    )


def _lost_line(table: QuarantinedTable) -> str:
    if table.min_key is None:
        return f"{table.file}: unreadable, its key and LSN range are unknown ({table.reason})"
    if table.salvaged_into is not None:
        return (
            f"{table.file}: {table.lost_entries} of {table.entries} entries in damaged blocks (keys "
            f"{table.lost_keys}), LSNs {table.min_lsn}..{table.max_lsn} (level {table.level}); the other "
            f"{table.salvaged_entries} were salvaged into {table.salvaged_into}"
        )
    return (
        f"{table.file}: keys {bytes.fromhex(table.min_key)!r}..{bytes.fromhex(table.max_key or '')!r}, "
        f"LSNs {table.min_lsn}..{table.max_lsn}, {table.entries} entries (level {table.level}); "
        "reads in that range now return older versions or nothing"
    )


def _finish_coverage(report: LsmRepairReport, data_dir: Path) -> None:
    report.wal_first_lsn = _wal_first_lsn(data_dir)
    ranges = [(t.min_lsn, t.max_lsn) for t in report.tables if t.min_lsn is not None and t.max_lsn is not None]
    report.lost_lsn_ranges = [span for span in ranges if span not in report.recovered_lsn_ranges]
    if report.tables:
        known = all(t.min_lsn is not None for t in report.tables)
        report.wal_covers = bool(
            known and report.wal_first_lsn is not None and all(low >= report.wal_first_lsn for low, _ in ranges)
        )


def quarantine_sstable(engine_or_path: Any, file: str | os.PathLike[str]) -> LsmRepairReport:
    """Take one table out of the live set and move it to quarantine.

    ``engine_or_path`` is an open read-write ``LsmEngine`` or the path of a data dir no process
    has open. The manifest is replaced first, then the file is moved, so a crash in between
    leaves an orphan file (reported by verify), never a manifest naming a missing file.
    """
    from engines.lsm.engine import LsmEngine

    number = _number_of(file)
    report = LsmRepairReport()
    if isinstance(engine_or_path, LsmEngine):
        data_dir = engine_or_path.path
        meta: TableMeta | None = engine_or_path._drop_table(number)
        _move(data_dir, number, meta, report, "quarantined on request")
    else:
        data_dir = Path(engine_or_path)
        with _data_dir_lock(data_dir):
            manifest = load_manifest(data_dir)
            found = [meta for meta in manifest.tables() if meta.number == number]
            meta = found[0] if found else None
            if meta is not None:
                levels = tuple(tuple(m for m in level if m.number != number) for level in manifest.levels)
                save_manifest(
                    data_dir,
                    Manifest(
                        levels=levels,
                        durable_lsn=manifest.durable_lsn,
                        next_file_number=manifest.next_file_number,
                        generation=manifest.generation + 1,
                        last_edit=Edit(reason="quarantine", durable_lsn_before=manifest.durable_lsn),
                        retired=manifest.retired,
                        pending=manifest.pending,
                    ),
                )
                report.actions.append(f"removed {table_name(number)} from {MANIFEST_NAME}")
            elif not (data_dir / SSTABLE_DIR / table_name(number)).exists():
                raise InvalidArgumentError(f"{SSTABLE_DIR}/{table_name(number)} is neither in the manifest nor on disk")
            _move(data_dir, number, meta, report, "quarantined on request")
    report.durable_lsn = load_manifest(data_dir).durable_lsn
    _finish_coverage(report, data_dir)
    return report


def _move(data_dir: Path, number: int, meta: TableMeta | None, report: LsmRepairReport, reason: str) -> None:
    source = data_dir / SSTABLE_DIR / table_name(number)
    quarantine = new_quarantine(data_dir, f"sstable-{number:06d}")
    report.quarantine = str(quarantine)
    moved = quarantine / SSTABLE_DIR / source.name
    if source.exists():
        moved = move_to_quarantine([source], quarantine, base=data_dir)[0]
        report.quarantined.append(str(moved))
        report.actions.append(f"moved {SSTABLE_DIR}/{source.name} to {moved}")
    if meta is None:
        try:
            reader = open_table(quarantine, number)
            meta = reader.meta
            reader.close()
        except TableCorruptionError:
            meta = None
    table = (
        _describe(meta, moved, reason)
        if meta is not None
        else QuarantinedTable(file=f"{SSTABLE_DIR}/{source.name}", moved_to=str(moved), reason=reason)
    )
    report.tables.append(table)
    report.lost.append(_lost_line(table))


def _salvage(
    source: Path, number: int, data_dir: Path, new_number: int, table: QuarantinedTable, report: LsmRepairReport
) -> TableMeta | None:
    """The sound blocks of damaged table ``number`` (in ``source``/sstables/), copied into table ``new_number``."""
    from engines.lsm.salvage import salvage_table

    try:
        salvaged = salvage_table(source, number, data_dir, new_number)
    except TableCorruptionError as exc:
        report.actions.append(f"{table.file}: nothing salvaged ({exc.message})")
        return None
    if salvaged.meta is None:
        report.actions.append(f"{table.file}: no data block could be read; nothing salvaged")
        return None
    ranges = ", ".join(f"{'[' if included else '('}{low!r}..{high!r}]" for low, high, included in salvaged.bad_ranges)
    table.salvaged_into = salvaged.meta.relative_path
    table.salvaged_entries = salvaged.kept
    table.lost_entries = salvaged.lost
    table.lost_keys = ranges or "none"
    report.actions.append(
        f"salvaged {salvaged.kept} of {table.entries} entries of {table.file} into "
        f"{salvaged.meta.relative_path} ({len(salvaged.bad_ranges)} damaged block(s) left out)"
    )
    return salvaged.meta


def _check_table(data_dir: Path, number: int) -> tuple[TableReader | None, str | None]:
    """Open and fully verify one table; (reader, None) when sound, (None, why) otherwise."""
    try:
        reader = open_table(data_dir, number)
    except TableCorruptionError as exc:
        return None, exc.message
    report = VerifyReport(backend="lsm")
    if not verify_table(reader, report):
        reader.close()
        return None, "; ".join(problem.detail for problem in report.problems[:3])
    return reader, None


def rebuild_manifest(data_dir: str | os.PathLike[str], *, levels: int | None = None) -> LsmRepairReport:
    """Write a new ``manifest.json`` from the SSTables alone (the old one goes to quarantine).

    Every table is verified block by block; a damaged one is quarantined and its range reported.
    If the WAL no longer reaches back to the rebuilt durable LSN, the gap is reported and the
    durable LSN set where the WAL resumes, so the data dir opens.
    """
    data_dir = Path(data_dir)
    directory = data_dir / SSTABLE_DIR
    if not directory.is_dir():
        raise NotFoundError(f"{directory} does not exist", hint="this is not an LSM data dir")
    report = LsmRepairReport()
    with _data_dir_lock(data_dir):
        quarantine = new_quarantine(data_dir, "manifest-rebuild")
        report.quarantine = str(quarantine)
        report.safety_copy = str(quarantine)
        old_durable = 0
        unfinished: int | None = None  # the durable LSN of a rebuild whose WAL replay never finished
        if (data_dir / MANIFEST_NAME).exists():
            try:
                old = load_manifest(data_dir)
                old_durable = old.durable_lsn
                levels = levels or len(old.levels)
                if old.last_edit is not None and old.last_edit.reason == "rebuild":
                    unfinished = old.durable_lsn
            except EngineError as exc:
                report.actions.append(f"the old manifest was unusable: {exc.message}")
            moved = move_to_quarantine([data_dir / MANIFEST_NAME], quarantine, base=data_dir)[0]
            report.quarantined.append(str(moved))
            report.actions.append(f"moved the old {MANIFEST_NAME} to {moved}")
        sound: dict[int, TableMeta] = {}
        # Tables leave sstables/ only after the manifest that no longer names them (and whose
        # durable LSN makes the WAL replay them) is durable: a repair cut short by a power cut
        # before that point leaves them in place, so the next repair finds the same damage.
        deferred: list[Path] = []
        damaged: list[tuple[int, TableMeta | None, QuarantinedTable]] = []
        numbers = [table_number(path.name) for path in directory.iterdir()]
        highest = max([number for number in numbers if number is not None], default=0)
        for path in sorted(directory.iterdir()):
            if path.name.endswith(TEMP_SUFFIX):
                moved = move_to_quarantine([path], quarantine, base=data_dir)[0]
                report.quarantined.append(str(moved))
                report.actions.append(f"moved the partial file {path.name} to quarantine")
                continue
            number = table_number(path.name)
            if number is None:
                continue
            highest = max(highest, number)
            reader, problem = _check_table(data_dir, number)
            if reader is None:
                meta = None
                try:
                    partial = open_table(data_dir, number)
                    meta = partial.meta
                    partial.close()
                except TableCorruptionError:
                    pass
                moved = quarantine / path.relative_to(data_dir)  # moved once the new manifest is durable
                deferred.append(path)
                report.quarantined.append(str(moved))
                table = (
                    _describe(meta, moved, f"damaged: {problem}")
                    if meta is not None
                    else QuarantinedTable(
                        file=f"{SSTABLE_DIR}/{path.name}", moved_to=str(moved), reason=f"damaged: {problem}"
                    )
                )
                damaged.append((number, meta, table))
                continue
            sound[number] = reader.meta
            reader.close()
        wal_first = _wal_first_lsn(data_dir)
        # Where the WAL reaches back to every damaged table's first write, its replay brings them
        # back whole (_replay_quarantined_from_wal); else each one's sound blocks are salvaged.
        replayable = (
            bool(damaged)
            and wal_first is not None
            and all(meta is not None and wal_first <= meta.min_lsn for _, meta, _ in damaged)
        )
        for number, meta, table in damaged:
            if meta is not None and not replayable:
                highest += 1
                # Read where it still is: it moves to quarantine once the new manifest is durable.
                salvaged = _salvage(data_dir, number, data_dir, highest, table, report)
                if salvaged is not None:
                    sound[salvaged.number] = salvaged
                if table.salvaged_into is not None and not table.lost_entries:
                    continue  # every data block was sound (a damaged filter or property block)
            report.tables.append(table)
            report.lost.append(_lost_line(table))
        superseded, uncommitted = _resolve_lineage(sound)
        for number, why in sorted({**superseded, **uncommitted}.items()):
            meta = sound.pop(number)
            moved = quarantine / SSTABLE_DIR / meta.name
            deferred.append(directory / meta.name)
            report.quarantined.append(str(moved))
            report.actions.append(f"moved {meta.name} to quarantine: {why}")
        layout = _assign_levels(list(sound.values()), levels or LsmSettings().levels, report)
        durable = max([old_durable] + [meta.durable_lsn for meta in sound.values()])
        if unfinished is not None:
            # A repair cut short (a power cut before its WAL replay was flushed) quarantined
            # tables this run cannot see any more: keep its lower LSN so the WAL replays them
            # (replay is idempotent for what the tables already hold).
            durable = min(durable, unfinished)
        durable = _replay_quarantined_from_wal(report, durable, wal_first)
        if wal_first is None:
            report.actions.append(
                f"the WAL holds no records: writes after LSN {durable} that only a lost or "
                "missing table held cannot be detected; compare with the latest backup"
            )
        elif wal_first > durable + 1:
            report.lost.append(f"LSNs {durable + 1}..{wal_first - 1} are neither in a table nor in the WAL")
            report.lost_lsn_ranges.append((durable + 1, wal_first - 1))
            report.ok = False
            durable = wal_first - 1
        manifest = Manifest(
            levels=layout,
            durable_lsn=durable,
            next_file_number=highest + 1,
            last_edit=Edit(reason="rebuild", durable_lsn_before=durable),
        )
        save_manifest(data_dir, manifest)
        for path in deferred:
            move_to_quarantine([path], quarantine, base=data_dir)
        report.actions.append(
            f"wrote {MANIFEST_NAME}: {len(sound)} tables in {sum(1 for lv in layout if lv)} "
            f"levels, durable LSN {durable}"
        )
        report.keys_after = sum(meta.entries - meta.tombstones for meta in sound.values())
    report.durable_lsn = durable
    gaps = list(report.lost_lsn_ranges)
    _finish_coverage(report, data_dir)
    report.lost_lsn_ranges = gaps + report.lost_lsn_ranges
    return report


def _replay_quarantined_from_wal(report: LsmRepairReport, durable: int, wal_first: int | None) -> int:
    """The durable LSN the rebuilt manifest may claim, so that the WAL brings back what it still holds.

    "Every write up to durable_lsn is in the listed tables" stops being true when a quarantined table
    held writes at or below it. Where the WAL still reaches back to the first of them, the durable
    LSN goes down to just before it: the next open replays those writes (replaying a write a sound
    table also holds is harmless, the same key gets the same value at the same LSN), and nothing the
    WAL covers is reported lost. Where it does not reach back, the writes are lost and said so.
    """
    held = [
        (table.min_lsn, table.max_lsn)
        for table in report.tables
        if table.min_lsn is not None and table.max_lsn is not None
    ]
    if not held or len(held) != len(report.tables) or wal_first is None:
        return durable
    first = min(low for low, _ in held)
    if first > durable or wal_first > first:
        return durable
    covered = [_lost_line(table) for table in report.tables]
    report.lost = [line for line in report.lost if line not in covered]
    report.recovered_lsn_ranges = held
    report.actions.append(
        f"the WAL still holds LSN {first} on: durable LSN set to {first - 1} (was {durable}), so "
        f"opening the data dir replays the quarantined tables' writes ({len(held)} table(s))"
    )
    return first - 1


def _resolve_lineage(tables: dict[int, TableMeta]) -> tuple[dict[int, str], dict[int, str]]:
    """Which of two generations to keep where a compaction's inputs and outputs are both on disk.

    When every input of a compaction is still there, its outputs go: the inputs hold the same
    writes (whether or not the compaction was committed, nothing is lost). When some input is
    gone, the compaction was committed and the inputs left are superseded. Decided on the set
    found on disk, so chains of compactions resolve consistently.
    """
    groups: dict[str, list[TableMeta]] = {}
    for meta in tables.values():
        compaction = meta.lineage.get("compaction")
        if compaction:
            groups.setdefault(str(compaction), []).append(meta)
    superseded: dict[int, str] = {}
    redundant: dict[int, str] = {}
    for compaction, outputs in groups.items():
        inputs = {int(n) for n in outputs[0].lineage.get("inputs", [])}
        if inputs and inputs <= set(tables):
            for meta in outputs:
                redundant[meta.number] = f"output of compaction {compaction}, whose inputs are all present"
        else:
            for number in inputs & set(tables):
                superseded[number] = f"replaced by compaction {compaction}"
    return superseded, redundant


def _assign_levels(
    tables: list[TableMeta], configured: int, report: LsmRepairReport
) -> tuple[tuple[TableMeta, ...], ...]:
    """Tables at the level they were written for; an overlap inside a level moves the older deeper."""
    depth = max([configured] + [meta.level + 1 for meta in tables])
    levels: list[list[TableMeta]] = [[] for _ in range(depth)]
    for meta in sorted(tables, key=lambda m: (m.durable_lsn, m.number), reverse=True):
        level = meta.level
        while level > 0 and any(
            other.max_key >= meta.min_key and other.min_key <= meta.max_key for other in levels[level]
        ):
            level += 1
            if level == len(levels):
                levels.append([])
        if level != meta.level:
            report.actions.append(f"{meta.name} overlaps a newer table in level {meta.level}; placed in level {level}")
            meta = TableMeta(**{**meta.__dict__, "level": level})
        levels[level].append(meta)
    return tuple(tuple(sort_level(n, level)) for n, level in enumerate(levels))
