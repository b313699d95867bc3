"""An immutable set of open tables per level, and the read state readers work from.

Readers take the current ``ReadState`` (one attribute read) and use it to the end: flushes and
compactions build new states and swap them in, they never change one a reader holds. That is
why compaction never blocks reads.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from engines.lsm.memtable import Memtable
from engines.lsm.merge import Chunk
from engines.lsm.sstable_reader import MISSING, DamagedTable, TableReader
from engines.lsm.table_meta import TableMeta

__all__ = ["Table", "Version", "ReadState", "sort_level"]

Table = TableReader | DamagedTable


def sort_level(level: int, tables: list[Any]) -> list[Any]:
    """L0 newest first (by LSN, then file number); deeper levels by key."""

    def meta(item: Any) -> TableMeta:
        return item if isinstance(item, TableMeta) else item.meta

    if level == 0:
        return sorted(tables, key=lambda item: (meta(item).max_lsn, meta(item).number), reverse=True)
    return sorted(tables, key=lambda item: meta(item).min_key)


class Version:
    """Open tables per level (``levels[0]`` newest first, deeper levels sorted by key)."""

    def __init__(self, levels: list[list[Table]]) -> None:
        self.levels = levels
        self._level0 = [(table, table.meta.min_key, table.meta.max_key) for table in levels[0]]
        self._deep = [(level, [table.meta.max_key for table in level]) for level in levels[1:] if level]

    def tables(self) -> list[Table]:
        return [table for level in self.levels for table in level]

    def get(self, key: bytes) -> Any:
        """The newest value (None: deleted) the tables hold for ``key``, or ``MISSING``."""
        for table, low, high in self._level0:
            if low <= key <= high:
                value = table.get(key)
                if value is not MISSING:
                    return value
        for level, max_keys in self._deep:
            index = bisect_left(max_keys, key)
            if index < len(level):
                table = level[index]
                if table.meta.min_key <= key:
                    value = table.get(key)
                    if value is not MISSING:
                        return value
        return MISSING

    def sources(self, start: bytes | None, end: bytes | None) -> list[Iterator[Chunk]]:
        """Chunk sources for ``[start, end)``, newest first: each L0 table, then each level."""

        def overlaps(table: Table) -> bool:
            meta = table.meta
            return (start is None or meta.max_key >= start) and (end is None or meta.min_key < end)

        sources: list[Iterator[Chunk]] = [table.chunks(start, end) for table in self.levels[0] if overlaps(table)]
        for level, max_keys in self._deep:
            first = 0 if start is None else bisect_left(max_keys, start)
            chosen = []
            for table in level[first:]:
                if end is not None and table.meta.min_key >= end:
                    break
                chosen.append(table)
            if len(chosen) == 1:
                sources.append(chosen[0].chunks(start, end))
            elif chosen:
                sources.append(_concatenate(chosen, start, end))
        return sources


def _concatenate(tables: list[Table], start: bytes | None, end: bytes | None) -> Iterator[Chunk]:
    for table in tables:
        yield from table.chunks(start, end)


class ReadState:
    """What a read sees: the active memtable, frozen ones (newest first) and a version."""

    __slots__ = ("active", "immutables", "version")

    def __init__(self, active: Memtable, immutables: tuple[Memtable, ...], version: Version) -> None:
        self.active = active
        self.immutables = immutables
        self.version = version
