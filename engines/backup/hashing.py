"""SHA-256 of an archive and of each member of its tar stream (the ``SHA256SUMS`` inside a backup).

Reading an archive back (``unpack.py``), ``Digest`` and ``MemberHasher`` hash in threads beside
the decompression (hashlib releases the GIL on large buffers), fed through bounded queues.
Writing one (``pack.py``), ``InlineMemberHasher`` hashes in the reading thread, while zstd's own
worker threads compress.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from typing import Any

__all__ = ["Digest", "MemberHasher", "InlineMemberHasher"]

_QUEUE_DEPTH = 16


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


class MemberHasher:
    """The SHA-256 of each member, computed in a thread beside the decompression."""

    def __init__(self) -> None:
        self.digests: dict[str, str] = {}
        self._items: queue.Queue[Any] = queue.Queue(maxsize=_QUEUE_DEPTH)
        self._thread = threading.Thread(target=self._run, name="member-hasher", daemon=True)
        self._thread.start()

    def begin(self, name: str) -> None:
        self._items.put(name)

    def update(self, chunk: Any) -> None:
        self._items.put(chunk)

    def finish(self) -> dict[str, str]:
        """Wait for the hashing to catch up; the digests by member name. Later calls just return them."""
        if self._thread.is_alive():
            self._items.put(None)
            self._thread.join()
        return self.digests

    def _run(self) -> None:
        name, digest = "", hashlib.sha256()
        while (item := self._items.get()) is not None:
            if not isinstance(item, str):
                digest.update(item)
                continue
            if name:
                self.digests[name] = digest.hexdigest()
            name, digest = item, hashlib.sha256()
        if name:
            self.digests[name] = digest.hexdigest()


class InlineMemberHasher:
    """``begin(name)``, then ``update(chunk)`` for its bytes; ``finish()`` gives the digests by name."""

    def __init__(self) -> None:
        self.digests: dict[str, str] = {}
        self._name = ""
        self._digest = hashlib.sha256()

    def begin(self, name: str) -> None:
        self._close()
        self._name, self._digest = name, hashlib.sha256()

    def update(self, chunk: Any) -> None:
        self._digest.update(chunk)

    def finish(self) -> dict[str, str]:
        self._close()
        return self.digests

    def _close(self) -> None:
        if self._name:
            self.digests[self._name] = self._digest.hexdigest()
            self._name = ""
