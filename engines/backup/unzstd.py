"""Reading a .zst file back: its frames decompressed on every core, the output handed out in order.

The frames ``pack.py`` writes (each with its content size, at most ``FRAME_BYTES``) are cut out of
the compressed stream as it is read (``frames.frame_span``) and decompressed by a pool, each
straight into a reusable buffer in one zstd call. A buffer goes back to the pool when its user
calls ``release``, so restoring writes the files out of the very memory zstd wrote into, and no
page of it is allocated twice. Any other frame (no content size in its header, or larger than
``PARALLEL_LIMIT``: an archive written by the zstd CLI or an older drconsole) is decompressed
as a stream in the reading thread, and every frame after it too.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from typing import BinaryIO

import zstandard

from engines.backup.frames import FRAME_BYTES, FrameError, OrderedPool, frame_span, worker_count

__all__ = ["ZstdFrames", "READ_BYTES", "PARALLEL_LIMIT"]

READ_BYTES = 8 << 20  # compressed bytes per read
PARALLEL_LIMIT = 2 * FRAME_BYTES  # the largest frame decompressed in one piece on the pool

Output = tuple[memoryview, bytearray | None]


class ZstdFrames:
    """The decompressed content of ``raw`` in order, as ``(bytes, buffer)`` pairs from ``chunks()``.

    Every compressed byte read is passed to ``seen`` first (the archive's hash, progress). A pair
    with a buffer must be given back with ``release(buffer)`` once its bytes are used, in any
    thread; ``chunks()`` waits for a buffer when all of them are out.
    """

    def __init__(self, raw: BinaryIO, seen: Callable[[bytes], None], workers: int | None = None) -> None:
        self._raw, self._seen = raw, seen
        self._workers = workers or worker_count()
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._buffers = 0
        self._pool: OrderedPool[tuple[memoryview, bytearray, int], Output] | None = None

    def release(self, buffer: bytearray) -> None:
        self._free.put(buffer)

    def chunks(self) -> Iterator[Output]:
        """Raises ``FrameError`` (not zstd) or ``zstandard.ZstdError`` (damaged) at the point reached."""
        pending = b""
        try:
            while True:
                chunk = self._read()
                data = pending + chunk if pending else chunk
                position = 0
                while (span := frame_span(data, position)) is not None:
                    if not span.skippable and (span.content_size is None or span.content_size > PARALLEL_LIMIT):
                        yield from self._drain()
                        yield from _stream(data[position:], self._read)
                        return
                    if span.end is None:
                        break
                    if not span.skippable:
                        yield from self._submit(memoryview(data)[position:span.end], span.content_size or 0)
                    position = span.end
                pending = data[position:]
                if not chunk:
                    break
            yield from self._drain()
            if pending:
                raise FrameError("the last zstd frame is cut short (truncated archive)")
        finally:
            if self._pool is not None:
                self._pool.close()

    def _read(self) -> bytes:
        chunk = self._raw.read(READ_BYTES)
        if chunk:
            self._seen(chunk)
        return chunk

    def _submit(self, frame: memoryview, size: int) -> Iterator[Output]:
        if self._pool is None:
            self._pool = OrderedPool(_decompress, zstandard.ZstdDecompressor, self._workers, "unzstd")
        pool = self._pool
        while True:
            try:
                buffer = self._free.get_nowait()
                break
            except queue.Empty:
                pass
            if self._buffers < self._workers + 2:
                self._buffers += 1
                buffer = bytearray(size)
                break
            if len(pool):
                yield pool.pop()  # its user hands a buffer back
            else:
                buffer = self._free.get()  # every buffer is with the user (a writer thread)
                break
        if len(buffer) < size:
            buffer = bytearray(size)
        pool.submit((frame, buffer, size))
        while pool.ready():
            yield pool.pop()

    def _drain(self) -> Iterator[Output]:
        while self._pool is not None and len(self._pool):
            yield self._pool.pop()


def _decompress(job: tuple[memoryview, bytearray, int], decompressor: zstandard.ZstdDecompressor) -> Output:
    """One whole frame into ``buffer`` (zstd checks the frame's checksum on the way)."""
    frame, buffer, size = job
    reader = decompressor.stream_reader(frame, read_across_frames=False)
    done = 0
    with memoryview(buffer) as view:
        while done < size:
            got = reader.readinto(view[done:size])
            if not got:
                break
            done += got
    if done != size:
        raise FrameError(f"a zstd frame holds {done} bytes, its header says {size}")
    return memoryview(buffer)[:size], buffer


def _stream(start: bytes, read: Callable[[], bytes]) -> Iterator[Output]:
    """Frame after frame as a stream, from ``start`` then whatever ``read`` gives, in this thread."""
    new_frame = zstandard.ZstdDecompressor().decompressobj
    decompressor = new_frame()
    inside = False  # bytes of the current frame have been fed
    chunk = start
    while chunk:
        while chunk:
            out = decompressor.decompress(chunk)
            inside = True
            if out:
                yield memoryview(out), None
            if not decompressor.eof:
                break
            chunk = decompressor.unused_data
            decompressor, inside = new_frame(), False
        chunk = read()
    if inside:
        raise FrameError("the last zstd frame is cut short (truncated archive)")
