"""The SHA-256 of each member of a tar stream: the ``SHA256SUMS`` inside a backup.

Computed in the thread that reads the bytes: hashlib releases the GIL on large buffers, so the
compressing or decompressing workers run meanwhile, and a separate hashing thread would only add
hand-offs, which a loaded machine makes slow.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["InlineMemberHasher"]


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
