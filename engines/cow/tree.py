"""The copy-on-write B+ tree in memory: lookups, ordered scans, and the write buffer.

Between commits the tree is *clean*: ``root`` is a page id and every node is a page on disk
(decoded nodes are cached). Writes go to ``buffer`` (key -> value, ``None`` for a delete), whose
memory is bounded by the dirty budget; the WAL has already made them durable. A commit
(``commit.py``) merges the buffer into copies of the nodes it touches, writes them to new pages,
and only then swaps the new root in: readers keep using the old root (whose pages are not
reused for two more commits) and the buffer until that moment. Lookups read the buffer first.

One lock guards the shared state (root, buffer, cache); readers hold it per lookup and per leaf
of a scan, a scan re-descending by key for every leaf so it never follows a page a commit has
since freed. ``commit_lock`` serialises writers with commits.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence

from engines.cow.cache import PageCache
from engines.cow.config import CowSettings
from engines.cow.freelist import Freelist
from engines.cow.meta import Meta
from engines.cow.node import Leaf, Node, OverflowRef
from engines.cow.pagefile import PageFile
from engines.errors import EngineError, ReadOnlyError, StorageIOError

__all__ = ["CowTree"]

_MISSING = object()
# Python memory of one buffered entry beyond its bytes: two dict slots, two bytes object headers.
BUFFER_ENTRY_OVERHEAD = 230


class CowTree:
    """The tree of one open COW file (``writable``: with a freelist, able to commit)."""

    def __init__(
        self,
        file: PageFile,
        meta: Meta,
        settings: CowSettings,
        *,
        freelist: Freelist | None = None,
        freelist_span: int = 0,
        cache: PageCache | None = None,
    ) -> None:
        self.file = file
        self.settings = settings
        self.page_size = file.page_size
        self.cache = cache if cache is not None else PageCache(settings.cache_bytes)
        self.meta = meta
        self.root = meta.root
        self.hwm = meta.hwm
        self.key_count = meta.key_count  # keys in the committed tree (the buffer not counted)
        self.freelist = freelist
        self.freelist_span = freelist_span
        self.buffer: dict[bytes, bytes | None] = {}
        # The LSN at which each buffered key was first buffered: a commit of part of the buffer
        # may claim only the LSNs before the oldest write it leaves behind.
        self.buffer_lsn: dict[bytes, int] = {}
        self.buffer_bytes = 0
        self.commit_cursor: bytes | None = None  # where the next partial commit starts
        self._in_tree: dict[bytes, bool] = {}  # buffered key -> in the committed tree (for counting)
        # The buffer's keys in order, as of the last call of sorted_buffer_keys, and the keys
        # buffered since (merged in on the next call: one linear merge, not a full sort).
        self._buffer_keys: list[bytes] = []
        self._fresh_keys: list[bytes] = []
        self.lock = threading.RLock()
        self.commit_lock = threading.Lock()
        self.pins: dict[int, int] = {}
        self._pin_counter = 0
        self.failure: EngineError | None = None
        self.commits = 0
        self.user_bytes = 0  # key and value bytes written: the denominator of write amplification

    # ------------------------------------------------------------------ reading
    def get(self, key: bytes) -> bytes | None:
        with self.lock:
            if self.buffer:
                value = self.buffer.get(key, _MISSING)
                if value is not _MISSING:
                    return value  # type: ignore[return-value]
            return self._tree_get(key)

    def _tree_get(self, key: bytes) -> bytes | None:
        """The committed value of ``key`` (the lock is held)."""
        node: int | Node = self.root
        entries = self.cache.entries
        while True:
            if type(node) is int:
                entry = entries.get(node)
                if entry is None:
                    node = self._load(node)
                else:
                    entries.move_to_end(node)
                    node = entry[0]
            if node.__class__ is Leaf:
                break
            node = node.children[bisect_right(node.keys, key, 1) - 1]  # type: ignore[union-attr]
        keys = node.keys  # type: ignore[union-attr]
        index = bisect_left(keys, key)
        if index < len(keys) and keys[index] == key:
            value = node.values[index]  # type: ignore[union-attr]
            if value.__class__ is OverflowRef:
                return self._read_overflow(value)  # type: ignore[arg-type]
            return value  # type: ignore[return-value]
        return None

    def scan(self, start: bytes | None, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """Live pairs with ``start <= key < end``, in order, one leaf at a time."""
        seek = start
        while True:
            with self.lock:
                node: int | Node = self.root
                upper: bytes | None = None
                while True:
                    if type(node) is int:
                        node = self._load(node)
                    if node.__class__ is Leaf:
                        break
                    keys = node.keys  # type: ignore[union-attr]
                    index = 0 if seek is None else bisect_right(keys, seek, 1) - 1
                    if index + 1 < len(keys):
                        upper = keys[index + 1]
                    node = node.children[index]  # type: ignore[union-attr]
                keys = node.keys  # type: ignore[union-attr]
                low = 0 if seek is None else bisect_left(keys, seek)
                high = len(keys) if end is None else bisect_left(keys, end, low)
                chunk_keys = keys[low:high]
                chunk_values = node.values[low:high]  # type: ignore[union-attr]
                for index, value in enumerate(chunk_values):
                    if value.__class__ is OverflowRef:
                        chunk_values[index] = self._read_overflow(value)  # type: ignore[arg-type]
                if self.buffer:
                    limit = end if upper is None or (end is not None and end <= upper) else upper
                    chunk_keys, chunk_values = self._with_buffer(chunk_keys, chunk_values, seek, limit)
            yield from zip(chunk_keys, chunk_values)  # type: ignore[misc]
            if high < len(keys) or upper is None or (end is not None and upper >= end):
                return
            seek = upper

    def _with_buffer(
        self, keys: list[bytes], values: list, low: bytes | None, high: bytes | None
    ) -> tuple[list[bytes], list]:
        """Merge buffered changes with keys in [low, high) into a chunk of the tree (lock held)."""
        ordered = self.sorted_buffer_keys()
        first = 0 if low is None else bisect_left(ordered, low)
        last = len(ordered) if high is None else bisect_left(ordered, high, first)
        if first == last:
            return keys, values
        buffer = self.buffer
        merged_keys: list[bytes] = []
        merged_values: list = []
        index = 0
        count = len(keys)
        for key in ordered[first:last]:
            while index < count and keys[index] < key:
                merged_keys.append(keys[index])
                merged_values.append(values[index])
                index += 1
            if index < count and keys[index] == key:
                index += 1
            value = buffer[key]
            if value is not None:
                merged_keys.append(key)
                merged_values.append(value)
        merged_keys.extend(keys[index:])
        merged_values.extend(values[index:])
        return merged_keys, merged_values

    def _load(self, page: int) -> Node:
        node = self.cache.get(page)
        if node is None:
            node = self.file.read_node(page, self.hwm)
            self.cache.put(page, node, node.memory)
        return node  # type: ignore[no-any-return]

    def _read_overflow(self, ref: OverflowRef) -> bytes:
        value = self.cache.get(ref.page)
        if value is None:
            value = self.file.read_overflow(ref, self.hwm)
            self.cache.put(ref.page, value, len(value) + 64)
        return value  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ writing
    def apply(self, entries: Sequence[tuple[bytes, bytes | None]], lsn: int) -> None:
        """Buffer a batch logged at ``lsn`` (``None`` deletes; a later duplicate wins), atomically."""
        if self.freelist is None:
            raise ReadOnlyError(f"{self.file.name} is open read-only")
        with self.commit_lock, self.lock:
            if self.failure is not None:
                raise self.failure
            if len(entries) == 1:  # single puts and deletes: the common case, kept short
                key, value = entries[0]
                self.buffer[key] = value
                if key not in self.buffer_lsn:
                    self.buffer_lsn[key] = lsn
                    self._fresh_keys.append(key)
                size = len(key) if value is None else len(key) + len(value)
            else:
                keys = [key for key, _value in entries]
                self.buffer.update(entries)
                new = set(keys).difference(self.buffer_lsn)
                if new:
                    self.buffer_lsn.update(dict.fromkeys(new, lsn))
                    self._fresh_keys.extend(new)
                size = sum(map(len, keys)) + sum(map(len, filter(None, [value for _key, value in entries])))
            self.user_bytes += size
            self.buffer_bytes += size + BUFFER_ENTRY_OVERHEAD * len(entries)

    def sorted_buffer_keys(self) -> list[bytes]:
        """The buffered keys in order (the lock is held)."""
        fresh = self._fresh_keys
        if fresh:
            fresh.sort()
            # Two sorted runs: timsort merges them in one linear pass.
            self._buffer_keys = sorted(self._buffer_keys + fresh) if self._buffer_keys else fresh
            self._fresh_keys = []
        return self._buffer_keys

    def forget_buffered(self, keys: list[bytes], values: list[bytes | None], remaining: list[bytes]) -> None:
        """Drop committed ``keys`` from the buffer; ``remaining`` is what stays, in order (lock held)."""
        buffer = self.buffer
        first_lsn = self.buffer_lsn
        known = self._in_tree
        for key in keys:
            del buffer[key]
            del first_lsn[key]
            known.pop(key, None)
        if buffer:
            size = sum(map(len, keys)) + sum(map(len, filter(None, values))) + BUFFER_ENTRY_OVERHEAD * len(keys)
            self.buffer_bytes = max(0, self.buffer_bytes - size)
        else:  # fresh dicts: emptied ones keep their tables (megabytes) allocated
            self.buffer, self.buffer_lsn, self._in_tree = {}, {}, {}
            self.buffer_bytes = 0
        self._buffer_keys = remaining

    @property
    def dirty(self) -> bool:
        return bool(self.buffer)

    def live_key_count(self) -> int:
        """Keys in the tree with the buffer applied.

        Whether a buffered key is in the committed tree cannot change before that key is
        committed, so each is looked up once (``_in_tree``), not on every call.
        """
        with self.lock:
            known = self._in_tree
            for key in self.buffer.keys() - known.keys():
                known[key] = self._tree_has(key)
            count = self.key_count
            for key, value in self.buffer.items():
                if value is None:
                    count -= known[key]
                else:
                    count += not known[key]
            return count

    def _tree_has(self, key: bytes) -> bool:
        node: int | Node = self.root
        while True:
            if type(node) is int:
                node = self._load(node)
            if node.__class__ is Leaf:
                break
            node = node.children[bisect_right(node.keys, key, 1) - 1]  # type: ignore[union-attr]
        keys = node.keys  # type: ignore[union-attr]
        index = bisect_left(keys, key)
        return index < len(keys) and keys[index] == key

    # ------------------------------------------------------------------ pins and state
    def pin(self) -> tuple[int, Meta]:
        """Keep the pages of the committed meta from reuse until ``unpin``; returns (token, meta)."""
        with self.lock:
            self._pin_counter += 1
            self.pins[self._pin_counter] = self.meta.txid
            return self._pin_counter, self.meta

    def unpin(self, token: int) -> None:
        with self.lock:
            self.pins.pop(token, None)

    def memory_bytes(self) -> int:
        free = self.freelist.free_count + self.freelist.pending_count if self.freelist is not None else 0
        return self.cache.bytes + self.buffer_bytes + 8 * free

    def fail(self, exc: BaseException) -> None:
        """A commit failed once it had started writing its meta: only a reopen is safe now."""
        if self.failure is None:
            self.failure = StorageIOError(
                f"{self.file.name}: a commit failed ({exc}); the data dir must be reopened",
                hint="fix the cause (disk space, I/O errors) and reopen: the WAL replays every acknowledged write",
            )

    def adopt(self, other: CowTree) -> None:
        """Take over ``other``'s file and state (compaction put a new file in place of ours)."""
        with self.lock:
            old = self.file
            self.file = other.file
            self.meta = other.meta
            self.root = other.root
            self.hwm = other.hwm
            self.key_count = other.key_count
            self.freelist = other.freelist
            self.freelist_span = other.freelist_span
            self.cache.clear()
            old.close()

    def close(self) -> None:
        self.cache.clear()
        self.file.close()
