"""The memtable: a dict for point reads and writes, a sorted key list built lazily for scans.

Writes cost one dict store (plus an append for a new key); the sorted list is brought up to
date only when a scan or a flush needs order, by sorting the new keys and merging them in with
C-level slicing. Sorted lists are never changed in place, so a scan keeps a stable list.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

__all__ = ["Memtable", "ENTRY_MEMORY"]

# Approximate bytes of Python bookkeeping per entry (dict slot, two bytes objects, list slot):
# the write buffer limit is about real memory, not payload.
ENTRY_MEMORY = 120
_FIRST_CHUNK = 128
_MAX_CHUNK = 4096


class Memtable:
    """Entries applied since the last flush. Mutated only under the engine's write lock."""

    __slots__ = ("data", "_sorted", "_new_keys", "bytes", "min_lsn", "max_lsn", "frozen")

    def __init__(self) -> None:
        self.data: dict[bytes, bytes | None] = {}
        self._sorted: list[bytes] = []
        self._new_keys: list[bytes] = []
        self.bytes = 0
        self.min_lsn = 0
        self.max_lsn = 0
        self.frozen = False

    def __len__(self) -> int:
        return len(self.data)

    def apply(self, lsn: int, entries: Sequence[tuple[bytes, bytes | None]]) -> None:
        data = self.data
        added = 0
        for key, value in entries:
            if key not in data:
                self._new_keys.append(key)
                added += len(key) + ENTRY_MEMORY
            previous = data.get(key)
            data[key] = value
            added += (0 if value is None else len(value)) - (0 if previous is None else len(previous))
        self.bytes += added
        if not self.min_lsn or lsn < self.min_lsn:
            self.min_lsn = lsn
        if lsn > self.max_lsn:
            self.max_lsn = lsn

    def sorted_keys(self) -> list[bytes]:
        """Every key in order (a list that is never modified afterwards)."""
        new = self._new_keys
        if new:
            self._new_keys = []
            new.sort()
            current = self._sorted
            if len(new) * 8 > len(current):
                merged = current + new
                merged.sort()
            else:
                merged = []
                position = 0
                for key in new:
                    cut = bisect_left(current, key, position)
                    merged += current[position:cut]
                    merged.append(key)
                    position = cut
                merged += current[position:]
            self._sorted = merged
        return self._sorted

    def chunks(
        self, start: bytes | None, end: bytes | None, lock: object | None = None
    ) -> Iterator[tuple[list[bytes], list[bytes | None]]]:
        """Sorted ``(keys, values)`` chunks of keys in ``[start, end)``.

        Each chunk is read under ``lock`` (the engine's write lock) so that it reflects whole
        writes; a long scan of the active memtable may see writes that land while it runs.
        """
        if lock is not None:
            with lock:  # type: ignore[attr-defined]
                keys = self.sorted_keys()
        else:
            keys = self.sorted_keys()
        low = 0 if start is None else bisect_left(keys, start)
        high = len(keys) if end is None else bisect_left(keys, end)
        size = _FIRST_CHUNK
        data = self.data
        while low < high:
            chunk = keys[low : min(high, low + size)]
            if lock is not None:
                with lock:  # type: ignore[attr-defined]
                    values = list(map(data.__getitem__, chunk))
            else:
                values = list(map(data.__getitem__, chunk))
            yield chunk, values
            low += len(chunk)
            size = min(size * 2, _MAX_CHUNK)
