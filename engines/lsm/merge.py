"""Merging sorted sources (memtables, tables, levels) chunk by chunk instead of row by row.

Every source yields sorted ``(keys, values)`` chunks, and sources are given newest first. All keys
up to the smallest "last key of the current chunk" across sources are known, so that slice of
every source goes into one dict (oldest first, so the newest value wins) and is sorted once.
The per-row work is then done by C code (``dict.update``, ``sorted``, ``zip``), which is what
makes a Python LSM scan competitive; a single remaining source is streamed with no merging.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from itertools import chain

__all__ = ["Chunk", "merge_chunks", "live_rows"]

Chunk = tuple[list[bytes], list[bytes | None]]


def _first(source: Iterator[Chunk]) -> list | None:
    for keys, values in source:
        if keys:
            return [keys, values, 0, source]
    return None


def merge_chunks(sources: Iterable[Iterator[Chunk]]) -> Iterator[Chunk]:
    """Merged sorted chunks, tombstones (None values) kept; sources newest first."""
    heads = [head for head in map(_first, sources) if head is not None]
    while heads:
        if len(heads) == 1:
            keys, values, position, source = heads[0]
            yield (keys, values) if position == 0 else (keys[position:], values[position:])
            yield from source
            return
        bound = min(head[0][-1] for head in heads)
        merged: dict[bytes, bytes | None] = {}
        for head in reversed(heads):
            keys, values, position = head[0], head[1], head[2]
            cut = len(keys) if keys[-1] <= bound else bisect_right(keys, bound, position)
            if cut > position:
                if position == 0 and cut == len(keys):
                    merged.update(zip(keys, values))
                else:
                    merged.update(zip(keys[position:cut], values[position:cut]))
                head[2] = cut
        advanced = []
        for head in heads:
            if head[2] < len(head[0]):
                advanced.append(head)
            else:
                following = _first(head[3])
                if following is not None:
                    advanced.append(following)
        heads = advanced
        ordered = sorted(merged)
        yield ordered, list(map(merged.__getitem__, ordered))


def _rows(chunk: Chunk) -> Iterator[tuple[bytes, bytes]]:
    keys, values = chunk
    if None in values:
        return iter([(key, value) for key, value in zip(keys, values) if value is not None])  # type: ignore[misc]
    return zip(keys, values)  # type: ignore[arg-type]


def live_rows(chunks: Iterable[Chunk]) -> Iterator[tuple[bytes, bytes]]:
    """The ``(key, value)`` rows of ``chunks``, tombstones left out.

    ``chain.from_iterable`` over per-chunk ``zip`` objects: no Python frame runs per row.
    """
    return chain.from_iterable(map(_rows, chunks))
