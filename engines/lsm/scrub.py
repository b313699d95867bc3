"""The scrub units of an LSM data dir: one per live SSTable, checked as ``engine verify`` does.

Each check opens the table on a descriptor of its own and reads every block from the file (not
from the block cache, which would hide damage on disk), with ``verify_table``'s full checks. A
table compaction retires during the pass is no longer live, and its problems are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engines.lsm.manifest import Manifest
from engines.lsm.sstable_reader import open_table
from engines.lsm.table_meta import TableMeta
from engines.lsm.verify import verify_table
from engines.reports import VerifyReport
from engines.scrub import Pace, ScrubUnit

__all__ = ["table_units"]


def table_units(data_dir: Path, manifest: Callable[[], Manifest]) -> list[ScrubUnit]:
    """One unit per table of ``manifest()`` (read again to decide whether a table is still live)."""

    def unit(meta: TableMeta) -> ScrubUnit:
        def check(report: VerifyReport, pace: Pace) -> None:
            reader = open_table(data_dir, meta.number, meta=meta)
            try:
                pace(max(0, reader.size - sum(reader.sizes) - 5 * len(reader.sizes)))  # footer, index, bloom
                verify_table(reader, report, meta, pace=pace)
            finally:
                reader.close()

        return ScrubUnit(
            file=meta.relative_path, size=meta.size, check=check, live=lambda: meta.number in manifest().numbers()
        )

    return [unit(meta) for meta in manifest().tables()]
