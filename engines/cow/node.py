"""Tree nodes in memory and their page encodings: leaves, branches and overflow references.

Bodies follow the page header (``page.py``); lengths first, then the bytes, so that decoding is
a few ``struct.unpack_from`` calls and slices::

    leaf      klen u16 * n | vlen u32 * n | flag u8 * n | keys | values
    branch    child u64 * n | klen u16 * n | keys

A leaf value whose flag is 1 is an overflow reference (``page u64 | length u32``) to a run of
OVERFLOW pages holding the value. In a branch, ``keys[i]`` is a lower bound of every key under
``children[i]``; a lookup takes the last child whose bound is <= the key (child 0 for anything
smaller, so ``keys[0]`` never steers).

A node read from a page is *clean*: it lives in the cache and is never changed. Writers change
*dirty* copies (``page == 0``) that are written to new pages at commit (copy on write).
"""

from __future__ import annotations

import struct
from bisect import bisect_left, bisect_right
from itertools import accumulate

from engines.cow.page import HEADER, HEADER_SIZE, LEAF_HAS_OVERFLOW, PageType, pages_for, seal

__all__ = [
    "Branch",
    "Leaf",
    "Node",
    "OverflowRef",
    "REF",
    "BRANCH_ENTRY_OVERHEAD",
    "decode_branch",
    "decode_leaf",
    "encode_branch",
    "encode_leaf",
    "LEAF_ENTRY_OVERHEAD",
    "make_run",
    "node_memory",
    "split_ranges",
    "stamp",
]

REF = struct.Struct("<QI")
_PAGE_ID = struct.Struct("<Q")
LEAF_ENTRY_OVERHEAD = 7  # klen u16 + vlen u32 + flag u8
BRANCH_ENTRY_OVERHEAD = 10  # child u64 + klen u16
# Rough bytes of Python objects per entry of a decoded node (two bytes objects, list slots).
_PY_ENTRY_MEMORY = 110
_PY_NODE_MEMORY = 250


class OverflowRef:
    """Where a large value lives: a run of OVERFLOW pages. ``len()`` is its size inside a leaf."""

    __slots__ = ("page", "length", "span")

    def __init__(self, page: int, length: int, span: int) -> None:
        self.page = page
        self.length = length
        self.span = span

    def __len__(self) -> int:
        return REF.size

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OverflowRef) and (self.page, self.length) == (other.page, other.length)

    def __hash__(self) -> int:
        return hash((self.page, self.length))

    def __repr__(self) -> str:
        return f"OverflowRef(page={self.page}, length={self.length}, span={self.span})"


class Leaf:
    """Keys in order and their values (bytes, or ``OverflowRef`` once written)."""

    __slots__ = ("keys", "values", "page", "span", "memory")

    def __init__(
        self, keys: list[bytes], values: list[bytes | OverflowRef], page: int = 0, span: int = 1, memory: int = 0
    ) -> None:
        self.keys = keys
        self.values = values
        self.page = page
        self.span = span
        self.memory = memory


class Branch:
    """Children (page ids when clean, nodes when dirty) and their lower-bound keys."""

    __slots__ = ("keys", "children", "page", "span", "memory")

    def __init__(
        self, keys: list[bytes], children: list[int | Node], page: int = 0, span: int = 1, memory: int = 0
    ) -> None:
        self.keys = keys
        self.children = children
        self.page = page
        self.span = span
        self.memory = memory


Node = Leaf | Branch


def node_memory(encoded_bytes: int, entries: int) -> int:
    """Estimated Python memory of a decoded node (what the page cache counts)."""
    return encoded_bytes + _PY_ENTRY_MEMORY * entries + _PY_NODE_MEMORY


def overflow_span(length: int, page_size: int) -> int:
    return pages_for(HEADER_SIZE + length, page_size)


def make_run(kind: PageType, flags: int, count: int, txid: int, body: bytes | memoryview, page_size: int) -> bytearray:
    """A whole run (header + body, zero padded to whole pages); ``stamp`` gives it its page id."""
    length = HEADER_SIZE + len(body)
    span = pages_for(length, page_size)
    buffer = bytearray(span * page_size)
    HEADER.pack_into(buffer, 0, 0, kind, flags, 0, 0, span - 1, count, txid)
    buffer[HEADER_SIZE:length] = body
    return buffer


def stamp(buffer: bytearray, page: int) -> None:
    """Set the page id of a run and seal its checksum."""
    _PAGE_ID.pack_into(buffer, 8, page)
    seal(buffer)


def encode_leaf(keys: list[bytes], values: list[bytes | OverflowRef]) -> tuple[int, bytes]:
    """The flags and body of a leaf. Every large value must already be an ``OverflowRef``."""
    n = len(keys)
    flags = 0
    stored: list[bytes] = values  # type: ignore[assignment]
    flag_bytes = bytes(n)
    if OverflowRef in map(type, values):
        flags = LEAF_HAS_OVERFLOW
        marks = bytearray(n)
        stored = []
        for index, value in enumerate(values):
            if value.__class__ is OverflowRef:
                marks[index] = 1
                stored.append(REF.pack(value.page, value.length))  # type: ignore[union-attr]
            else:
                stored.append(value)  # type: ignore[arg-type]
        flag_bytes = bytes(marks)
    body = b"".join(
        [struct.pack(f"<{n}H", *map(len, keys)), struct.pack(f"<{n}I", *map(len, stored)), flag_bytes, *keys, *stored]
    )
    return flags, body


def decode_leaf(buffer: bytes, page: int, page_size: int) -> Leaf:
    """The leaf in a verified run. Raises ValueError when the lengths do not fit the run."""
    _checksum, _kind, flags, _reserved, _page, overflow, n, _txid = HEADER.unpack_from(buffer)
    key_lengths = struct.unpack_from(f"<{n}H", buffer, HEADER_SIZE)
    value_lengths = struct.unpack_from(f"<{n}I", buffer, HEADER_SIZE + 2 * n)
    flag_start = HEADER_SIZE + 6 * n
    key_ends = list(accumulate(key_lengths, initial=flag_start + n))
    value_ends = list(accumulate(value_lengths, initial=key_ends[-1]))
    end = value_ends[-1]
    if end > len(buffer):
        raise ValueError(f"entries end at byte {end}, past the run's {len(buffer)} bytes")
    keys = [buffer[a:b] for a, b in zip(key_ends, key_ends[1:])]
    values: list[bytes | OverflowRef] = [buffer[a:b] for a, b in zip(value_ends, value_ends[1:])]
    if flags & LEAF_HAS_OVERFLOW:
        marks = buffer[flag_start : flag_start + n]
        for index in range(n):
            if marks[index]:
                raw = values[index]
                if len(raw) != REF.size:
                    raise ValueError(f"entry {index} is an overflow reference of {len(raw)} bytes")
                target, length = REF.unpack(raw)  # type: ignore[arg-type]
                values[index] = OverflowRef(target, length, overflow_span(length, page_size))
    return Leaf(keys, values, page, overflow + 1, node_memory(end, n))


def encode_branch(keys: list[bytes], children: list[int]) -> bytes:
    n = len(keys)
    return b"".join([struct.pack(f"<{n}Q", *children), struct.pack(f"<{n}H", *map(len, keys)), *keys])


def decode_branch(buffer: bytes, page: int) -> Branch:
    """The branch in a verified run. Raises ValueError when the lengths do not fit the run."""
    _checksum, _kind, _flags, _reserved, _page, overflow, n, _txid = HEADER.unpack_from(buffer)
    children = list(struct.unpack_from(f"<{n}Q", buffer, HEADER_SIZE))
    key_lengths = struct.unpack_from(f"<{n}H", buffer, HEADER_SIZE + 8 * n)
    key_ends = list(accumulate(key_lengths, initial=HEADER_SIZE + 10 * n))
    if key_ends[-1] > len(buffer):
        raise ValueError(f"keys end at byte {key_ends[-1]}, past the run's {len(buffer)} bytes")
    keys = [buffer[a:b] for a, b in zip(key_ends, key_ends[1:])]
    return Branch(keys, children, page, overflow + 1, node_memory(key_ends[-1], n))  # type: ignore[arg-type]


def split_ranges(sizes: list[int], capacity: int, max_entries: int, minimum: int = 1) -> list[tuple[int, int]]:
    """Cut entries of the given encoded ``sizes`` into pieces that fit ``capacity`` bytes.

    Pieces are of even size rather than full-then-remainder, so a node that just overflowed
    splits into two half-full nodes with room to grow, and a long run packs pages full.
    ``max_entries`` (0: no limit) caps entries per piece (the low-memory profile's small nodes).
    A piece too big for ``capacity`` spans pages: a single large leaf entry, or the ``minimum``
    entries every piece has (2 for branches, so that each level has fewer nodes than the one
    below it however long the keys are).
    """
    n = len(sizes)
    ends = list(accumulate(sizes, initial=0))  # ends[i]: bytes of entries [0, i)
    total = ends[n]
    pieces = max(1, -(-total // capacity))
    if max_entries:
        pieces = max(pieces, -(-n // max_entries))
    if pieces == 1 or n < 2:
        return [(0, n)]
    ranges: list[tuple[int, int]] = []
    start = 0
    while start < n:
        left = max(1, pieces - len(ranges))
        base = ends[start]
        even = bisect_left(ends, base + (total - base) / left, start + 1)  # reaches an even share
        full = bisect_right(ends, base + capacity, start + 1) - 1  # the most that fits
        stop = min(even, full, n)
        if max_entries:
            stop = min(stop, start + max_entries)
        stop = max(stop, start + minimum)
        if n - stop < minimum:
            stop = n
        ranges.append((start, stop))
        start = stop
    return ranges
