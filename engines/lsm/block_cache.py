"""An LRU cache of decoded data blocks, bounded in bytes and resizable at run time."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

__all__ = ["BlockCache"]

# Python objects cost more than their payload: a decoded block is two lists of bytes objects.
_PER_ENTRY_OVERHEAD = 90


class BlockCache:
    """Decoded blocks keyed by ``(table id, block index)``; the least recently used go first."""

    def __init__(self, capacity_bytes: int) -> None:
        self._capacity = max(0, capacity_bytes)
        self._entries: OrderedDict[tuple[int, int], tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._used = 0
        self.hits = 0
        self.misses = 0

    @property
    def capacity_bytes(self) -> int:
        return self._capacity

    @property
    def used_bytes(self) -> int:
        return self._used

    def get(self, key: tuple[int, int]) -> Any:
        """The cached value, or None.

        No lock: each OrderedDict call is atomic under the GIL, and an entry evicted between
        the two calls only costs its recency update. The hit counters are approximate.
        """
        entries = self._entries
        found = entries.get(key)
        if found is None:
            self.misses += 1
            return None
        try:
            entries.move_to_end(key)
        except KeyError:
            pass
        self.hits += 1
        return found[0]

    def put(self, key: tuple[int, int], value: Any, raw_bytes: int, entries: int) -> None:
        charge = raw_bytes + entries * _PER_ENTRY_OVERHEAD
        if charge > self._capacity:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._used -= previous[1]
            self._entries[key] = (value, charge)
            self._used += charge
            self._evict_locked()

    def resize(self, capacity_bytes: int) -> None:
        """Change the capacity; shrinking evicts at once."""
        with self._lock:
            self._capacity = max(0, capacity_bytes)
            self._evict_locked()

    def forget_table(self, table_id: int, blocks: int) -> None:
        """Drop the blocks of a retired table."""
        with self._lock:
            for index in range(blocks):
                found = self._entries.pop((table_id, index), None)
                if found is not None:
                    self._used -= found[1]

    def _evict_locked(self) -> None:
        entries = self._entries
        while self._used > self._capacity and entries:
            _, (_, charge) = entries.popitem(last=False)
            self._used -= charge
