"""Exhaustive, read-only checks of an LSM data dir (``sst_dump --command=check`` plus the manifest).

Per table: footer (magic, checksum, format version), properties, index and bloom blocks, every
data block's checksum, key order inside and across blocks, index keys against block contents,
entry and tombstone counts and key range against the properties and the manifest, and that the
bloom filter admits every key. Across tables: levels >= 1 sorted and non-overlapping, every
manifest entry present (``missing-file``) and every ``.sst`` in ``sstables/`` named by the manifest
(``orphan-file``). Nothing is ever written; problems carry the file (relative to the data dir)
and the block offset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from engines.errors import EngineError
from engines.lsm.manifest import MANIFEST_NAME, Manifest, level_problems, load_manifest
from engines.lsm.sstable_reader import TableCorruptionError, TableReader, open_table
from engines.lsm.table_meta import SSTABLE_DIR, TEMP_SUFFIX, TableMeta, table_number
from engines.reports import VerifyReport

__all__ = ["verify_table", "verify_tables", "verify_data_dir", "find_orphans"]


def verify_table(
    reader: TableReader,
    report: VerifyReport,
    expected: TableMeta | None = None,
    *,
    pace: Callable[[int], None] | None = None,
) -> bool:
    """Check every block of one open table; returns True when it is sound.

    ``pace(n)`` is called after each data block with the bytes read (the background scrub sleeps
    there to stay under its rate).
    """
    relative = reader.relative
    before = len(report.problems)
    report.count("sstables")
    if reader.bloom_problem is not None:
        report.add(
            reader.bloom_problem.kind, reader.bloom_problem.message, file=relative, offset=reader.bloom_problem.offset
        )
    properties = reader.properties
    previous: bytes | None = None
    entries = tombstones = 0
    first: bytes | None = None
    bloom = reader.bloom
    bloom_misses = 0
    expected_offset = 0
    for index, (offset, size) in enumerate(zip(reader.offsets, reader.sizes)):
        report.count("data_blocks")
        if offset != expected_offset:
            report.add(
                "index",
                f"data block {index} starts at {offset}, expected {expected_offset}",
                file=relative,
                offset=reader.footer.index[0],
            )
        expected_offset = offset + size + 5
        if pace is not None:
            pace(size + 5)
        try:
            keys, values = reader.raw_block(index)
        except TableCorruptionError as exc:
            report.add(exc.kind, exc.message, file=relative, offset=exc.offset)
            previous = reader.index_keys[index]
            continue
        if not keys:
            report.add("key-order", f"data block {index} is empty", file=relative, offset=offset)
            continue
        if previous is not None and keys[0] <= previous:
            report.add(
                "key-order",
                f"block {index} starts with {keys[0]!r}, not after {previous!r}",
                file=relative,
                offset=offset,
            )
        if any(low >= high for low, high in zip(keys, keys[1:])):
            report.add(
                "key-order", f"keys of data block {index} are not strictly increasing", file=relative, offset=offset
            )
        if keys[-1] != reader.index_keys[index]:
            report.add(
                "index",
                f"index names {reader.index_keys[index]!r} as the last key of block {index}, "
                f"the block ends with {keys[-1]!r}",
                file=relative,
                offset=offset,
            )
        if first is None:
            first = keys[0]
        previous = keys[-1]
        entries += len(keys)
        tombstones += values.count(None)
        if bloom is not None:
            bloom_misses += sum(1 for key in keys if not bloom.may_contain(key))
    report.count("entries", entries)
    if expected_offset != reader.footer.bloom[0]:
        report.add(
            "index",
            f"data blocks end at {expected_offset}, the bloom block starts at {reader.footer.bloom[0]}",
            file=relative,
            offset=reader.footer.index[0],
        )
    props_offset = reader.footer.props[0]
    damaged_blocks = any(p.file == relative and p.kind == "checksum" for p in report.problems[before:])
    if not damaged_blocks:
        if entries != int(properties["entries"]):
            report.add(
                "entry-count",
                f"{entries} entries, the properties say {properties['entries']}",
                file=relative,
                offset=props_offset,
            )
        if tombstones != int(properties["tombstones"]):
            report.add(
                "entry-count",
                f"{tombstones} tombstones, the properties say {properties['tombstones']}",
                file=relative,
                offset=props_offset,
            )
        if first is not None and (
            first.hex() != properties["min_key"] or previous is None or previous.hex() != properties["max_key"]
        ):
            report.add(
                "key-range", "the keys do not span the properties' min/max key", file=relative, offset=props_offset
            )
    if bloom_misses:
        report.add(
            "bloom",
            f"the bloom filter rejects {bloom_misses} keys the table holds",
            file=relative,
            offset=reader.footer.bloom[0],
        )
    if expected is not None:
        described = reader.meta if reader.meta is not expected else None
        if described is None:
            try:
                described = TableMeta(
                    number=expected.number,
                    level=int(properties["level"]),
                    size=reader.size,
                    entries=int(properties["entries"]),
                    tombstones=int(properties["tombstones"]),
                    min_key=bytes.fromhex(properties["min_key"]),
                    max_key=bytes.fromhex(properties["max_key"]),
                    min_lsn=int(properties["min_lsn"]),
                    max_lsn=int(properties["max_lsn"]),
                )
            except (KeyError, ValueError, TypeError):
                described = None
        if described is not None:
            # Not the level: a manifest rebuild may place a table below an overlapping newer one.
            for name in ("size", "entries", "min_key", "max_key", "min_lsn", "max_lsn"):
                if getattr(described, name) != getattr(expected, name):
                    report.add(
                        "manifest",
                        f"manifest says {name} {getattr(expected, name)!r}, the table {getattr(described, name)!r}",
                        file=relative,
                    )
    return len(report.problems) == before


def verify_tables(data_dir: Path, manifest: Manifest, readers: Mapping[int, object], report: VerifyReport) -> None:
    """Check every table the manifest names (through ``readers`` when open) and the level layout."""
    for problem in level_problems(manifest.levels):
        report.add("level-overlap", problem, file=MANIFEST_NAME)
    for meta in manifest.tables():
        reader = readers.get(meta.number)
        if not isinstance(reader, TableReader):
            try:
                reader = open_table(data_dir, meta.number, meta=meta)
            except TableCorruptionError as exc:
                report.count("sstables")
                report.add(exc.kind, exc.message, file=exc.file or meta.relative_path, offset=exc.offset)
                continue
            try:
                verify_table(reader, report, meta)
            finally:
                reader.close()
        else:
            verify_table(reader, report, meta)


def find_orphans(data_dir: Path, live: Iterable[int], ignore: Iterable[int] = ()) -> list[str]:
    """``.sst`` files in ``sstables/`` that are neither live nor in ``ignore`` (names)."""
    directory = Path(data_dir) / SSTABLE_DIR
    keep = set(live) | set(ignore)
    orphans = []
    if directory.is_dir():
        for path in sorted(directory.iterdir()):
            if path.name.endswith(TEMP_SUFFIX):
                continue
            number = table_number(path.name)
            if number is None or number not in keep:
                orphans.append(path.name)
    return orphans


def verify_data_dir(data_dir: Path) -> VerifyReport:
    """Verify an LSM data dir without opening the engine (works when the engine cannot open)."""
    from engines.wal import WalReader  # the WAL half, as Engine.verify does it

    data_dir = Path(data_dir)
    report = VerifyReport(backend="lsm")
    try:
        manifest = load_manifest(data_dir)
    except EngineError as exc:
        report.add("manifest", exc.message, file=MANIFEST_NAME)
        for name in find_orphans(data_dir, ()):
            report.count("unlisted_sstables")
            number = table_number(name)
            if number is None:
                continue
            try:
                reader = open_table(data_dir, number)
            except TableCorruptionError as exc:
                report.add(exc.kind, exc.message, file=exc.file, offset=exc.offset)
                continue
            try:
                verify_table(reader, report)
            finally:
                reader.close()
    else:
        verify_tables(data_dir, manifest, {}, report)
        ignore = set(manifest.retired) | set(manifest.pending)
        if manifest.last_edit is not None:
            ignore |= {meta.number for meta in manifest.last_edit.removed}
        for name in find_orphans(data_dir, manifest.numbers(), ignore):
            number = table_number(name)
            if number is not None and number >= manifest.next_file_number:
                continue  # an interrupted flush/compaction's output; the next open removes it
            report.add(
                "orphan-file", f"{name} is in {SSTABLE_DIR}/ but not in the manifest", file=f"{SSTABLE_DIR}/{name}"
            )
    validation = WalReader(data_dir / "wal").validate()
    report.count("wal_records", validation.records)
    if validation.corruption is not None:
        problem = validation.corruption
        report.add("wal", problem.reason, file=f"wal/{problem.segment}", offset=problem.offset)
    return report
