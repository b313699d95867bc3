"""The scrub units of a RocksDB data dir: one per live table, read through RocksDB with checksums on.

rocksdict does not expose ``DB::VerifyChecksum``, so each table is read the way it offers: an
iterator over the table's key range (``live_files()`` gives it) with ``verify_checksums`` and
without filling the block cache, so every data block of the table (and of tables overlapping
it) is read from the file and its checksum checked. Index and filter blocks are checked by
RocksDB when it opens a table. A damaged block ends the iteration with ``Corruption: block
checksum mismatch: ... in file .../000012.sst offset N``, mapped like every RocksDB error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rocksdict import ReadOptions

from engines.errors import CorruptionError
from engines.reports import VerifyReport
from engines.rocksdb.errors import rocks_call
from engines.scrub import Pace, ScrubUnit

__all__ = ["table_units"]

_PACE_EVERY = 64 * 1024


def table_units(db: Callable[[], Any], live_files: Callable[[], list[dict[str, Any]]], rocks_dir: str,
                relative: Callable[[str | None], str | None]) -> list[ScrubUnit]:
    """One unit per live table of the open ``db()``; ``rocks_dir`` is its folder relative to the
    data dir, ``relative`` maps a path named in a RocksDB message to one relative to the data dir."""

    def unit(item: dict[str, Any]) -> ScrubUnit:
        name = str(item["name"]).lstrip("/")
        start, end = bytes(item["start_key"]), bytes(item["end_key"])

        def check(report: VerifyReport, pace: Pace) -> None:
            options = ReadOptions()
            options.set_verify_checksums(True)
            options.fill_cache(False)  # type: ignore[call-arg]  # the stub omits the flag
            options.set_readahead_size(256 * 1024)
            options.set_iterate_upper_bound(end + b"\x00")  # end_key is inclusive
            pending = 0
            try:
                with rocks_call(f"scrubbing {rocks_dir}/{name}"):
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
                report.add("checksum", exc.message, file=relative(exc.file) or f"{rocks_dir}/{name}",
                           offset=exc.offset)
            pace(pending)

        return ScrubUnit(file=f"{rocks_dir}/{name}", size=int(item["size"]), check=check,
                         live=lambda: any(str(other["name"]).lstrip("/") == name for other in live_files()))

    return [unit(item) for item in live_files()]
