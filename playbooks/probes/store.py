"""The store's index: lost or damaged while the data it points at is intact?

Each engine keeps a small index over its data files: the LSM engine's ``manifest.json`` (which
tables, at which level), RocksDB's ``CURRENT`` and ``MANIFEST-*``, the COW file's two meta pages
(the tree's root). Losing it makes the store unopenable, yet nothing is lost: the LSM manifest is
rebuilt from the tables' own records (each table carries its level, key and LSN ranges), RocksDB's
``RepairDB`` rebuilds its MANIFEST from the SST files, and the COW repair salvages every record from
the pages. The guides say to rebuild (Orbit ``rebuild_lsm_manifest``, ``rocksdb-repair``), not to
restore a backup and replay: that would lose every write after the backup the WAL does not hold.
"""

from __future__ import annotations

import os
from pathlib import Path

from playbooks.evidence import backend_from_files
from playbooks.probes.base import Answer, ProbeContext, probe
from playbooks.probes.local import needs_data_dir

__all__ = ["index_damage"]


def _lsm(data_dir: Path) -> Answer:
    from engines.lsm.manifest import MANIFEST_NAME, load_manifest
    from engines.lsm.sstable_reader import open_table
    from engines.lsm.table_meta import SSTABLE_DIR, table_number
    from engines.lsm.verify import verify_table
    from engines.reports import VerifyReport

    manifest = data_dir / MANIFEST_NAME
    if manifest.exists():
        try:
            load_manifest(data_dir)
            return Answer(False, f"{MANIFEST_NAME} is present and reads")
        except Exception as exc:  # noqa: BLE001 - any failure to read it is what this question is about
            lost = f"{MANIFEST_NAME} is damaged ({type(exc).__name__}: {exc})"
    else:
        lost = f"{MANIFEST_NAME} is missing"
    numbers = (
        sorted(
            number for entry in os.scandir(data_dir / SSTABLE_DIR) if (number := table_number(entry.name)) is not None
        )
        if (data_dir / SSTABLE_DIR).is_dir()
        else []
    )
    if not numbers:
        return Answer(False, f"{lost}, and there is no SSTable to rebuild it from")
    report = VerifyReport(backend="lsm")
    for number in numbers:
        try:
            reader = open_table(data_dir, number)
        except Exception as exc:  # noqa: BLE001 - a table that does not open is damage of its own
            report.add("sstable", str(exc), file=f"{SSTABLE_DIR}/{number:06d}.sst")
            continue
        try:
            verify_table(reader, report)
        finally:
            reader.close()
    if report.problems:
        first = report.problems[0]
        return Answer(
            False,
            f"{lost}, and {len(report.problems)} problem(s) in the tables too ({first.detail} in "
            f"{first.file}): more than the index is damaged",
        )
    return Answer(
        True,
        f"{lost}; all {len(numbers)} SSTables verify (every block checksum): the manifest can be "
        "rebuilt from them with nothing lost",
        {"tables": len(numbers)},
    )


def _rocksdb(data_dir: Path) -> Answer:
    rocks = data_dir / "rocksdb"
    tables = sorted(rocks.glob("*.sst")) if rocks.is_dir() else []
    current = rocks / "CURRENT"
    if current.exists():
        named = current.read_text(encoding="utf-8", errors="replace").strip()
        if named and (rocks / named).is_file():
            return Answer(False, f"rocksdb/CURRENT names {named}, which is present")
        lost = f"rocksdb/CURRENT names {named or '(nothing)'}, which is missing"
    else:
        lost = "rocksdb/CURRENT is missing"
    if not tables:
        return Answer(False, f"{lost}, and there is no SST file to rebuild it from")
    size = sum(path.stat().st_size for path in tables)
    return Answer(
        True,
        f"{lost}; {len(tables)} SST files ({size} bytes) are present: RocksDB's repair rebuilds the "
        "MANIFEST from them (checking each table's checksums)",
        {"tables": len(tables)},
    )


def _cow(data_dir: Path) -> Answer:
    from engines.cow.offline import open_slots
    from engines.cow.page import DATA_FILE, PageCorruptionError

    path = data_dir / DATA_FILE
    if not path.is_file():
        return Answer(False, f"{DATA_FILE} is missing: no pages to rebuild from")
    fd = os.open(path, os.O_RDONLY)
    try:
        open_slots(data_dir, fd)
    except PageCorruptionError as exc:
        return Answer(
            True,
            f"both meta pages of {DATA_FILE} are unreadable ({exc}); the repair salvages every "
            "record from the data pages",
            {"file": DATA_FILE},
        )
    finally:
        os.close(fd)
    return Answer(False, f"a meta page of {DATA_FILE} is sound: the tree's root is known")


def _backend(data_dir: Path) -> str | None:
    """The marker's backend, else what the files show (a lost CURRENT still leaves rocksdb/)."""
    from engines.errors import EngineError
    from engines.marker import read_marker

    try:
        marker = read_marker(data_dir)
    except EngineError:
        marker = None
    if marker is not None:
        return marker.backend
    return backend_from_files(data_dir) or ("rocksdb" if (data_dir / "rocksdb").is_dir() else None)


def index_damage(data_dir: Path) -> Answer:
    backend = _backend(data_dir)
    if backend == "lsm":
        return _lsm(data_dir)
    if backend == "rocksdb":
        return _rocksdb(data_dir)
    if backend == "cow":
        return _cow(data_dir)
    return Answer(False, f"{data_dir} holds no engine files to rebuild an index from")


@probe("store.index_only")
@needs_data_dir
def index_only(context: ProbeContext, data_dir: Path) -> Answer:
    """Is only the store's index lost or damaged (manifest, MANIFEST, meta pages), with the data files intact?"""
    return context.cached("index", lambda: index_damage(data_dir))  # type: ignore[no-any-return]
