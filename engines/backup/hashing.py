"""SHA-256 of an archive and of each member of its tar stream (the ``SHA256SUMS`` inside a format 1 backup).

``Digest`` hashes a stream (the archive) in a thread; ``MemberHasher`` hashes members, a whole
member each, in a few threads and in the caller (beside the decompression when reading an archive
back, ``unpack.py``). hashlib releases the GIL on large buffers; the queues are bounded, so a fast
producer waits instead of filling memory.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["HASH_THREADS", "Digest", "MemberHasher"]

_QUEUE_DEPTH = 16
# Member hashing threads: beside zstd and the reader, two keep a 2-core machine busy; more than
# four gain nothing at ~1.5 GB/s of SHA-256 each (the disk or zstd is slower).
HASH_THREADS = max(1, min(4, os.cpu_count() or 1))


class Digest:
    """One SHA-256 computed in a thread from the chunks handed to it."""

    def __init__(self, name: str) -> None:
        self.digest = hashlib.sha256()
        self._items: queue.Queue[Any] = queue.Queue(maxsize=_QUEUE_DEPTH)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def update(self, chunk: Any) -> None:
        self._items.put(chunk)

    def then(self, call: Callable[[], None]) -> None:
        """Call ``call`` in the thread once every chunk handed so far is hashed (to reuse their buffer)."""
        self._items.put(call)

    def finish(self) -> str:
        if self._thread.is_alive():
            self._items.put(None)
            self._thread.join()
        return self.digest.hexdigest()

    def _run(self) -> None:
        update = self.digest.update
        while (chunk := self._items.get()) is not None:
            if callable(chunk):
                chunk()
            else:
                update(chunk)


class MemberHasher:
    """Each member hashed whole by one lane: one of ``threads`` threads, or the caller itself.

    ``begin(name, size)``, then ``update(chunk)`` for its bytes in order. A member goes to the
    least loaded lane when it begins. Several members are hashed at once, so a data dir of many
    files is not held to one core's SHA-256 speed; a single big file still is (its bytes must be
    hashed in order).

    ``inline_weight`` > 0 makes the caller a lane too, its load counted that many times over
    (it has its own work besides: decompressing). The caller hashes a piece it has just
    decompressed, still in its core's cache: SHA-256 runs at ~1.9 GB/s there, against ~1.1 GB/s
    in a thread that fetches the piece from memory. With ``threads=0`` the caller hashes
    everything.
    """

    def __init__(self, threads: int, *, inline_weight: float = 0.0) -> None:
        self._queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=_QUEUE_DEPTH * 4) for _ in range(max(0, threads))]
        self._digests: list[dict[str, str]] = [{} for _ in range(len(self._queues) + 1)]
        # Lane 0 is the caller, a lane only when weighted (or when there is no thread).
        self._weights = [inline_weight if inline_weight > 0 else 1.0] + [1.0] * len(self._queues)
        self._choices = (
            [0] if not self._queues else [*([0] if inline_weight > 0 else []), *range(1, len(self._weights))]
        )
        self._load = [0] * len(self._weights)
        self._lane = 0
        self._name = ""
        self._digest = hashlib.sha256()
        self._threads = [
            threading.Thread(target=self._run, args=(q, d), name=f"member-hasher-{n}", daemon=True)
            for n, (q, d) in enumerate(zip(self._queues, self._digests[1:]))
        ]
        for thread in self._threads:
            thread.start()

    def begin(self, name: str, size: int) -> None:
        self._close_inline()
        self._lane = min(self._choices, key=lambda lane: (self._load[lane] + size) * self._weights[lane])
        self._load[self._lane] += size
        if self._lane:
            self._queues[self._lane - 1].put(name)
        else:
            self._name, self._digest = name, hashlib.sha256()

    def update(self, chunk: Any) -> None:
        if self._lane:
            self._queues[self._lane - 1].put(chunk)
            return
        self._digest.update(chunk)

    def finish(self) -> dict[str, str]:
        """Wait for every member to be hashed; the digests by member name."""
        self._close_inline()
        for items in self._queues:
            items.put(None)
        for thread in self._threads:
            thread.join()
        merged: dict[str, str] = {}
        for digests in self._digests:
            merged.update(digests)
        return merged

    def _close_inline(self) -> None:
        if self._name:
            self._digests[0][self._name] = self._digest.hexdigest()
            self._name = ""

    def _run(self, items: queue.Queue[Any], digests: dict[str, str]) -> None:
        name, digest = "", hashlib.sha256()
        while (item := items.get()) is not None:
            if isinstance(item, str):
                if name:
                    digests[name] = digest.hexdigest()
                name, digest = item, hashlib.sha256()
                continue
            digest.update(item)
        if name:
            digests[name] = digest.hexdigest()
