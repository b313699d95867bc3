"""The scrub units of a RocksDB data dir: disjoint key ranges read through RocksDB with checksums on.

rocksdict does not expose ``DB::VerifyChecksum``, so the tables are read the way it offers: an
iterator with ``verify_checksums`` and without filling the block cache, so every data block it
passes is read from its file and its checksum checked. A damaged block ends the iteration with
``Corruption: block checksum mismatch: ... in file .../000012.sst offset N``, mapped like every
RocksDB error. Index and filter blocks are checked by RocksDB when it opens a table.

Units are key ranges, not tables: L0 tables (and a level's neighbours) overlap, and a unit per
table's own range read the overlapping data once per table, a pass growing with the square of
the L0 count. The live tables' first keys cut the key space into disjoint ranges, one unit each,
named after the table whose first key starts it; an iterator merges every table, so one pass
reads each live data block once. An iterator pins the version it started on: a table that
compaction retires meanwhile is still read whole, never half-deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rocksdict import ReadOptions

from engines.errors import CorruptionError
from engines.reports import VerifyReport
from engines.rocksdb.errors import rocks_call
from engines.scrub import Pace, ScrubUnit

__all__ = ["range_units"]

_PACE_EVERY = 64 * 1024


def range_units(
    db: Callable[[], Any],
    live_files: Callable[[], list[dict[str, Any]]],
    rocks_dir: str,
    relative: Callable[[str | None], str | None],
) -> list[ScrubUnit]:
    """Disjoint key ranges covering every live table of the open ``db()``; ``rocks_dir`` is its folder
    relative to the data dir, ``relative`` maps a path in a RocksDB message to one relative to it."""
    starts: dict[bytes, dict[str, Any]] = {}
    for item in live_files():
        key = bytes(item["start_key"])
        if key not in starts or int(item["size"]) > int(starts[key]["size"]):
            starts[key] = item
    ordered = sorted(starts)

    def unit(index: int) -> ScrubUnit:
        start = ordered[index]
        end = ordered[index + 1] if index + 1 < len(ordered) else None
        name = f"{rocks_dir}/{str(starts[start]['name']).lstrip('/')}"

        def check(report: VerifyReport, pace: Pace) -> None:
            options = ReadOptions()
            options.set_verify_checksums(True)
            options.fill_cache(False)  # type: ignore[call-arg]  # the stub omits the flag
            if end is not None:
                options.set_iterate_upper_bound(end)
            pending = 0
            try:
                with rocks_call(f"scrubbing {rocks_dir} from key {start!r}"):
                    iterator = db().iter(options)
                    iterator.seek(start)
                    valid, key, value, step = iterator.valid, iterator.key, iterator.value, iterator.next
                    while valid():
                        pending += len(key()) + len(value())
                        if pending >= _PACE_EVERY:
                            pace(pending)
                            pending = 0
                        step()
                    iterator.status()  # an iterator stops early on corruption: this raises it
            except CorruptionError as exc:
                report.add("checksum", exc.message, file=relative(exc.file) or name, offset=exc.offset)
            pace(pending)

        return ScrubUnit(file=name, size=int(starts[start]["size"]), check=check)

    return [unit(index) for index in range(len(ordered))]
