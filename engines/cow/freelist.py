"""Free pages, and when a freed page may be written again.

A commit with txid ``t`` frees the pages of the nodes it replaced; they are *pending* at ``t``.
Pages pending at ``t`` are still part of the tree of meta ``t - 1``, the fallback should meta
``t`` be torn, so they may be reused only by a commit ``>= t + 2`` (by then meta ``t`` is the
older meta and ``t - 1`` is overwritten). An open checkpoint or snapshot pins the txid whose
pages it is copying: nothing freed after that txid is reused until it is unpinned.

On disk the freelist is one run of FREELIST pages (``count`` = extents)::

    start u64 * n | length u32 * n | txid u64 * n        (txid 0: free; else pending at txid)
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

from engines.cow.page import HEADER_SIZE

__all__ = ["Freelist", "decode_freelist", "extents"]

EXTENT_SIZE = 20


def extents(pages: Iterable[int]) -> list[tuple[int, int]]:
    """Runs of consecutive page ids as (start, length), in order."""
    runs: list[tuple[int, int]] = []
    start = previous = -2
    for page in sorted(pages):
        if page != previous + 1:
            if previous >= 0:
                runs.append((start, previous - start + 1))
            start = page
        previous = page
    if previous >= 0:
        runs.append((start, previous - start + 1))
    return runs


class Freelist:
    """Reusable pages (``free``) and pages pending at the commit that freed them."""

    def __init__(self, free: Iterable[int] = (), pending: dict[int, list[int]] | None = None) -> None:
        # Descending, so that pop() hands out the lowest page: the file's tail frees up first.
        self._free = sorted(free, reverse=True)
        self._pending: dict[int, list[int]] = {txid: list(pages) for txid, pages in (pending or {}).items()}

    @property
    def free_count(self) -> int:
        return len(self._free)

    @property
    def pending_count(self) -> int:
        return sum(len(pages) for pages in self._pending.values())

    def pages(self) -> Iterator[tuple[int, int]]:
        """Every (page, txid) it holds; txid 0 for reusable pages."""
        for page in self._free:
            yield page, 0
        for txid, pages in self._pending.items():
            for page in pages:
                yield page, txid

    def add_pending(self, txid: int, pages: Iterable[int]) -> None:
        self._pending.setdefault(txid, []).extend(pages)

    def drop_pending(self, txid: int) -> None:
        """Forget the pages pending at ``txid`` (its commit was abandoned before its meta)."""
        self._pending.pop(txid, None)

    def give_back(self, pages: list[int]) -> None:
        """Return pages taken by an abandoned commit: nothing durable refers to them."""
        if pages:
            self._free.extend(pages)
            self._free.sort(reverse=True)

    def release(self, upto_txid: int) -> list[int]:
        """Make pages pending at ``<= upto_txid`` reusable; return them."""
        ready = [txid for txid in self._pending if txid <= upto_txid]
        released: list[int] = []
        for txid in ready:
            released.extend(self._pending.pop(txid))
        if released:
            self._free.extend(released)
            self._free.sort(reverse=True)
        return released

    def allocate(self, count: int) -> int | None:
        """The first page of ``count`` consecutive reusable pages, taken; None when there is none.

        Runs are taken from the start of a maximal extent, so allocating never splits an extent
        and the encoded freelist never grows from it.
        """
        free = self._free
        if not free:
            return None
        if count == 1:
            return free.pop()
        ascending = free[::-1]
        start = 0
        for index in range(1, len(ascending) + 1):
            if index == len(ascending) or ascending[index] != ascending[index - 1] + 1:
                if index - start >= count:
                    first = ascending[start]
                    del ascending[start : start + count]
                    ascending.reverse()
                    self._free = ascending
                    return first
                start = index
        return None

    def trim_tail(self, hwm: int) -> int:
        """Drop reusable pages at the end of the file; return the new high-water mark."""
        free = self._free
        while free and free[0] == hwm - 1:
            free.pop(0)
            hwm -= 1
        return hwm

    def encoded_size(self) -> int:
        return HEADER_SIZE + EXTENT_SIZE * self._extent_count()

    def _extent_count(self) -> int:
        return len(extents(self._free)) + sum(len(extents(pages)) for pages in self._pending.values())

    def encode(self) -> tuple[int, bytes]:
        """(extent count, body) of the freelist run."""
        rows = [(start, length, 0) for start, length in extents(self._free)]
        for txid in sorted(self._pending):
            rows.extend((start, length, txid) for start, length in extents(self._pending[txid]))
        n = len(rows)
        body = b"".join(
            [
                struct.pack(f"<{n}Q", *(row[0] for row in rows)),
                struct.pack(f"<{n}I", *(row[1] for row in rows)),
                struct.pack(f"<{n}Q", *(row[2] for row in rows)),
            ]
        )
        return n, body


def decode_freelist(buffer: bytes, count: int) -> list[tuple[int, int, int]]:
    """The (start, length, txid) extents in a verified freelist run."""
    if HEADER_SIZE + EXTENT_SIZE * count > len(buffer):
        raise ValueError(f"{count} extents do not fit the run's {len(buffer)} bytes")
    starts = struct.unpack_from(f"<{count}Q", buffer, HEADER_SIZE)
    lengths = struct.unpack_from(f"<{count}I", buffer, HEADER_SIZE + 8 * count)
    txids = struct.unpack_from(f"<{count}Q", buffer, HEADER_SIZE + 12 * count)
    return list(zip(starts, lengths, txids))
