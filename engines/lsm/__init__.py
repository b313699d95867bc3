"""The LSM-tree backend: memtable + shared WAL, SSTables, ``manifest.json``, leveled compaction.

    engine.py          LsmEngine, the Engine hooks, background flush and compaction threads
    settings.py        backend options and the low-memory profile
    memtable.py        the write buffer
    sstable_format.py  the table file format (blocks, trailers, footer)
    sstable_writer.py  writing a table;  sstable_reader.py  reading one
    bloom.py           the per-table bloom filter;  block_cache.py  the decoded-block LRU
    table_meta.py      what is known about a table;  manifest.py  the live set per level
    version.py         immutable read snapshots;  merge.py  merging sorted sources
    compaction.py      choosing and running compactions
    verify.py          read-only checks;  repair.py  quarantine and manifest rebuild

Repair primitives for playbooks: ``quarantine_sstable``, ``rebuild_manifest``, ``verify_data_dir``.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["LsmRepairReport", "QuarantinedTable", "quarantine_sstable", "rebuild_manifest", "verify_data_dir"]

# The repair primitives load on first use: importing any submodule (``backup create`` reads
# ``manifest.py`` only) runs this file, and repair's imports cost a short process ~80 ms.
_LAZY = {
    "LsmRepairReport": "repair",
    "QuarantinedTable": "repair",
    "quarantine_sstable": "repair",
    "rebuild_manifest": "repair",
    "verify_data_dir": "verify",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
