"""A bounded cache of decoded pages (nodes and overflow values), least recently used out first.

Clean pages never change while they are reachable (copy on write), so an entry keyed by page id
stays right until the page is freed and written again; writers replace or drop it then. The
bound counts an estimate of the Python objects' memory, not the pages' bytes on disk.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

__all__ = ["PageCache"]


class PageCache:
    """Page id -> decoded object, bounded by ``capacity`` bytes (0: caches nothing)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(0, capacity)
        self.entries: OrderedDict[int, tuple[Any, int]] = OrderedDict()
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def get(self, page: int) -> Any:
        entry = self.entries.get(page)
        if entry is None:
            self.misses += 1
            return None
        self.entries.move_to_end(page)
        self.hits += 1
        return entry[0]

    def put(self, page: int, value: Any, size: int) -> None:
        old = self.entries.pop(page, None)
        if old is not None:
            self.bytes -= old[1]
        if size > self.capacity // 4:
            return  # one huge value would flush everything else out
        self.entries[page] = (value, size)
        self.bytes += size
        while self.bytes > self.capacity:
            _page, (_value, evicted) = self.entries.popitem(last=False)
            self.bytes -= evicted
            self.evictions += 1

    def discard(self, page: int) -> None:
        old = self.entries.pop(page, None)
        if old is not None:
            self.bytes -= old[1]

    def resize(self, capacity: int) -> None:
        """Change the bound, evicting at once if it shrank (the guide's ``reduce-cache``)."""
        self.capacity = max(0, capacity)
        while self.bytes > self.capacity and self.entries:
            _page, (_value, evicted) = self.entries.popitem(last=False)
            self.bytes -= evicted
            self.evictions += 1

    def clear(self) -> None:
        self.entries.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self.entries)
