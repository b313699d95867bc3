"""The zstd frames of an archive: found in the compressed bytes, decompressed on every core, in order.

A backup is a sequence of zstd frames (``pack.py`` ends one every 32 MB of tar stream), so its
decompression can run beside the hashing and writing of what came before: ``FrameSplitter``
walks frame and block headers (RFC 8878) to cut the compressed stream into whole frames without
decompressing anything, and ``FrameDecoder`` decompresses them on a worker thread (one per frame
call, so the GIL changes hands twice per frame, not per chunk) and hands the outputs back in order. A frame too large to hold in
memory at once (an archive written as one frame, by another tool or an older drconsole) is
decompressed as it streams in, in this thread.
"""

from __future__ import annotations

import os
import struct
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import zstandard

__all__ = ["FrameSplitter", "FrameDecoder", "FrameError", "WHOLE_FRAME_BYTES"]

_MAGIC = 0xFD2FB528
_SKIPPABLE = 0x184D2A50  # ..0x184D2A5F
WHOLE_FRAME_BYTES = 64 << 20  # larger frames stream through this thread instead of the pool


class FrameError(Exception):
    """The compressed stream is not a sequence of zstd frames."""


class FrameSplitter:
    """Cuts a zstd stream fed in arbitrary pieces into frames.

    ``feed`` yields ``(kind, data)``: ``("frame", bytes)`` for a whole frame, ``("stream", bytes)``
    for the next piece of a frame too large to buffer (decompress it in order), ``("end", b"")``
    when that large frame is complete, and nothing for skippable frames.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._position = 0  # how far the current frame's headers have been walked
        self._header_done = False
        self._checksum = 0
        self._streaming = False
        self._streamed = 0  # bytes of the current (large) frame handed out so far

    @property
    def inside(self) -> bool:
        """Whether a frame has started but not ended."""
        return bool(self._buffer) or self._streaming

    def feed(self, data: bytes) -> Iterator[tuple[str, bytes]]:
        self._buffer += data
        while self._buffer:
            end = self._frame_end()
            if end is None:
                if self._streaming or len(self._buffer) > WHOLE_FRAME_BYTES:
                    yield from self._stream_out(self._position)
                return
            if self._streaming:
                yield from self._stream_out(end)
                yield "end", b""
            elif end > 0:
                yield "frame", bytes(memoryview(self._buffer)[:end])  # one copy, not two
            del self._buffer[:end - self._streamed]
            self._position, self._header_done, self._streaming, self._streamed = 0, False, False, 0

    def _stream_out(self, upto: int) -> Iterator[tuple[str, bytes]]:
        """Hand out the bytes of a large frame that are walked already (and drop them here)."""
        self._streaming = True
        take = upto - self._streamed
        if take > 0:
            yield "stream", bytes(memoryview(self._buffer)[:take])
            del self._buffer[:take]
            self._streamed += take

    def _frame_end(self) -> int | None:
        """Offset (in stream terms of the current frame) where it ends; None while incomplete.

        0 for a skippable frame (consumed here without output): the caller drops its bytes.
        """
        buffer, base = self._buffer, self._streamed
        if not self._header_done:
            if len(buffer) < 4:
                return None
            (magic,) = struct.unpack_from("<I", buffer, 0)
            if magic & 0xFFFFFFF0 == _SKIPPABLE:
                if len(buffer) < 8:
                    return None
                (size,) = struct.unpack_from("<I", buffer, 4)
                if len(buffer) < 8 + size:
                    return None
                del buffer[:8 + size]
                return 0 if not buffer else self._frame_end()
            if magic != _MAGIC:
                raise FrameError("not a zstd frame (bad magic number)")
            if len(buffer) < 5:
                return None
            descriptor = buffer[4]
            single = descriptor >> 5 & 1
            size_flag = descriptor >> 6
            header = 5 + (0 if single else 1) + (0, 1, 2, 4)[descriptor & 3] \
                + ((1 if single else 0), 2, 4, 8)[size_flag]
            if descriptor & 0x08:
                raise FrameError("a reserved bit of a zstd frame header is set")
            self._checksum = 4 if descriptor & 0x04 else 0
            self._position, self._header_done = header, True
        while True:
            local = self._position - base
            if len(buffer) < local + 3:
                return None
            block = int.from_bytes(buffer[local:local + 3], "little")
            kind, size = block >> 1 & 3, block >> 3
            if kind == 3:
                raise FrameError("a zstd block has the reserved type")
            length = 3 + (1 if kind == 1 else size)
            if len(buffer) < local + length:
                return None
            self._position += length
            if block & 1:  # the last block
                if len(buffer) < self._position - base + self._checksum:
                    self._position -= length  # walk this block again once the checksum is here
                    return None
                return self._position + self._checksum


class FrameDecoder:
    """Decompresses whole frames on a pool and returns the outputs in order; large frames inline."""

    def __init__(self, workers: int | None = None) -> None:
        count = max(1, workers or os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(count, thread_name_prefix="unzstd")
        self._pending: deque[Future[bytes]] = deque()
        self._depth = count * 2
        self._stream: zstandard.ZstdDecompressionObj | None = None

    def add(self, kind: str, data: bytes) -> Iterator[bytes]:
        """Take one item of ``FrameSplitter.feed``; yield the outputs now due, in order."""
        if kind == "frame":
            self._pending.append(self._pool.submit(self._decompress, data))
            while len(self._pending) > self._depth:
                yield self._pending.popleft().result()
            return
        yield from self.drain()  # a streamed frame comes after every frame before it
        if kind == "stream":
            if self._stream is None:
                self._stream = zstandard.ZstdDecompressor().decompressobj()
            yield self._stream.decompress(data)
        elif kind == "end":
            stream, self._stream = self._stream, None
            if stream is None or not stream.eof:
                raise FrameError("a zstd frame ended before its last block")

    def drain(self) -> Iterator[bytes]:
        while self._pending:
            yield self._pending.popleft().result()

    def close(self) -> None:
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)

    def _decompress(self, frame: bytes) -> bytes:
        decompressor = zstandard.ZstdDecompressor().decompressobj()
        out = decompressor.decompress(frame)
        if not decompressor.eof or decompressor.unused_data:
            raise FrameError("a zstd frame does not end where its blocks say")
        return out
