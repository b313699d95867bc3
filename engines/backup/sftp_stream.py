"""An archive sent to an SFTP repository while it is being packed, instead of after.

``backup create`` to an ``sftp://`` repository packs into a local working copy and then uploads
the new backup directory (``mirror.py``). Packing and uploading one after the other costs the
whole upload on top of the packing; tar piped into ssh does both at once. So the packer hands
every compressed piece to an ``ArchiveUpload`` as well, which writes it, a few MB at a time with
several writes in flight, to the very temp file the upload of that directory would write
(``.tmp/upload/<id>.dir/<archive>``). When the directory is pushed, ``SftpStore`` finds that
file whole (the size and SHA-256 the packer recorded) and sends nothing again; it still asks
the server to fsync it, reads its SHA-256 back and renames the directory into place, as for any
upload.

The stream never fails a backup: a dropped link (or any error) stops it, and the push uploads
the file the usual way, resuming the part already there when its bytes check. Repositories
whose files are encrypted at rest or whose account is append-only are not streamed.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engines.backup.sftp_store import SftpStore

__all__ = ["ArchiveUpload", "BLOCK_BYTES", "IN_FLIGHT"]

BLOCK_BYTES = 4 << 20  # per SFTP write call (asyncssh splits it into parallel requests)
IN_FLIGHT = 3  # write calls outstanding before the packer's writer thread waits for the oldest
SETTLE_SECONDS = 30.0  # for the writes in flight to end after one failed


class ArchiveUpload:
    """Writes to ``remote`` (a path on the store's host) what ``write`` is given, in order."""

    def __init__(self, store: SftpStore, path: str) -> None:
        self.store, self.path = store, path
        self.error: BaseException | None = None
        self._offset = 0
        self._pending = bytearray()
        self._flying: collections.deque[concurrent.futures.Future[Any]] = collections.deque()
        self._handle: Any = None
        try:
            self._handle = store.call(self._open())
        except Exception as exc:  # noqa: BLE001 - a stream that cannot start leaves the work to the push
            self.error = exc

    async def _open(self) -> Any:
        import posixpath

        sftp = await self.store.client()
        remote = self.store.remote(self.path)
        await sftp.makedirs(posixpath.dirname(remote), exist_ok=True)
        return await sftp.open(remote, "wb", encoding=None)

    def write(self, data: bytes) -> None:
        if self.error is not None:
            return
        self._pending += data
        if len(self._pending) >= BLOCK_BYTES:
            self._send()

    def finish(self, size: int, sha256: str) -> bool:
        """Send the rest, fsync and close; record the file with the store. Whether it is all there."""
        if self.error is None:
            self._send()
            self._wait(0)
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                self.store.call(self._close(handle, sync=self.error is None))
            except Exception as exc:  # noqa: BLE001 - see the module docstring
                self.error = self.error or exc
        if self.error is not None or self._offset != size:
            return False
        # The server hashes it while the small files of the backup go up (SftpStore._upload waits).
        self.store.streamed[self.path] = (size, sha256, self.store.stored_sha256_soon(self.path))
        return True

    def abort(self) -> None:
        """Stop: the packing failed. What was sent is removed (our temp file; best effort, the link may be down)."""
        self.error = self.error or RuntimeError("packing failed")
        self._settle()
        handle, self._handle = self._handle, None
        try:
            if handle is not None:
                self.store.call(self._close(handle, sync=False))
            self.store.call(self._remove())
        except Exception:  # noqa: BLE001, S110 - the link may be what failed
            pass

    async def _remove(self) -> None:
        sftp = await self.store.client()
        await sftp.remove(self.store.remote(self.path))

    async def _close(self, handle: Any, *, sync: bool) -> None:
        if sync:
            await self.store.fsync_handle(handle)
        await handle.close()

    def _send(self) -> None:
        if not self._pending:
            return
        block, self._pending = bytes(self._pending), bytearray()
        self._flying.append(asyncio.run_coroutine_threadsafe(self._handle.write(block, self._offset), self.store.loop))
        self._offset += len(block)
        self._wait(IN_FLIGHT)

    def _wait(self, keep: int) -> None:
        while len(self._flying) > keep:
            try:
                self._flying.popleft().result()
            except Exception as exc:  # noqa: BLE001 - see the module docstring
                self.error = exc
                self._settle()
                return

    def _settle(self) -> None:
        """Let the writes in flight end (they fail fast once the link is gone); none is left unread."""
        concurrent.futures.wait(self._flying, timeout=SETTLE_SECONDS)
        for future in self._flying:
            if not future.done() or future.exception() is not None:
                future.cancel()
        self._flying.clear()
