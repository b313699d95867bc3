"""SHA-256 of an archive and of each member of its tar stream (the ``SHA256SUMS`` inside a backup).

``Digest`` hashes a stream (the archive) in a thread; ``ParallelMemberHasher`` hashes members in a
few threads, a whole member each: beside zstd's worker threads when packing (``pack.py``), beside
the decompression when reading an archive back (``unpack.py``). hashlib releases the GIL on large
buffers; the queues are bounded, so a fast producer waits instead of filling memory.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["HASH_THREADS", "Digest", "InlineMemberHasher", "MemberHasher", "ParallelMemberHasher", "member_hasher"]

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

    def finish(self) -> str:
        if self._thread.is_alive():
            self._items.put(None)
            self._thread.join()
        return self.digest.hexdigest()

    def _run(self) -> None:
        update = self.digest.update
        while (chunk := self._items.get()) is not None:
            update(chunk)


class InlineMemberHasher:
    """Each member hashed in the caller's thread, piece by piece, as it is handed over.

    The piece was read or decompressed a moment before, so it is still in this core's cache:
    SHA-256 runs at ~1.9 GB/s there, against ~1.1 GB/s in another thread that fetches the piece
    from memory. Where the cores are all busy anyway (zstd's workers on a 2-core machine) that
    is CPU time saved, not moved; with more cores to spare ``ParallelMemberHasher`` spreads it.
    """

    def __init__(self, release: Callable[[Any], None] | None = None) -> None:
        self._release = release
        self._digests: dict[str, str] = {}
        self._name = ""
        self._digest = hashlib.sha256()

    def begin(self, name: str, size: int) -> None:
        self._close()
        self._name, self._digest = name, hashlib.sha256()

    def update(self, chunk: Any, token: Any = None) -> None:
        self._digest.update(chunk)
        if token is not None and self._release is not None:
            self._release(token)

    def finish(self) -> dict[str, str]:
        self._close()
        return self._digests

    def _close(self) -> None:
        if self._name:
            self._digests[self._name] = self._digest.hexdigest()
            self._name = ""


class ParallelMemberHasher:
    """Each member hashed whole by one of ``workers`` threads (the least loaded when it begins).

    ``begin(name, size)``, then ``update(chunk, token)`` for its bytes in order; once a chunk is
    hashed, ``release(token)`` is called in the hashing thread (the reader reuses its buffer),
    when both are given.
    Several members are hashed at once, so a data dir of many files is not held to one core's
    SHA-256 speed; a single big file still is (its bytes must be hashed in order).
    """

    def __init__(self, workers: int, release: Callable[[Any], None] | None = None) -> None:
        self._release = release
        self._queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=_QUEUE_DEPTH * 4) for _ in range(max(1, workers))]
        self._load = [0] * len(self._queues)
        self._digests: list[dict[str, str]] = [{} for _ in self._queues]
        self._current: queue.Queue[Any] = self._queues[0]
        self._threads = [
            threading.Thread(target=self._run, args=(q, d), name=f"member-hasher-{n}", daemon=True)
            for n, (q, d) in enumerate(zip(self._queues, self._digests))
        ]
        for thread in self._threads:
            thread.start()

    def begin(self, name: str, size: int) -> None:
        index = self._load.index(min(self._load))
        self._load[index] += size
        self._current = self._queues[index]
        self._current.put(name)

    def update(self, chunk: Any, token: Any = None) -> None:
        self._current.put((chunk, token))

    def finish(self) -> dict[str, str]:
        """Wait for every member to be hashed; the digests by member name."""
        for items in self._queues:
            items.put(None)
        for thread in self._threads:
            thread.join()
        merged: dict[str, str] = {}
        for digests in self._digests:
            merged.update(digests)
        return merged

    def _run(self, items: queue.Queue[Any], digests: dict[str, str]) -> None:
        name, digest = "", hashlib.sha256()
        release = self._release
        while (item := items.get()) is not None:
            if isinstance(item, str):
                if name:
                    digests[name] = digest.hexdigest()
                name, digest = item, hashlib.sha256()
                continue
            digest.update(item[0])
            if item[1] is not None and release is not None:
                release(item[1])
        if name:
            digests[name] = digest.hexdigest()


MemberHasher = InlineMemberHasher | ParallelMemberHasher


def member_hasher(workers: int, release: Callable[[Any], None] | None = None) -> MemberHasher:
    """``workers`` threads hashing members beside the caller, or none (0): the caller hashes inline."""
    return InlineMemberHasher(release) if workers <= 0 else ParallelMemberHasher(workers, release)
