"""Independent zstd frames, compressed and decompressed on every core, handed back in order.

A backup archive is a sequence of zstd frames of at most ``FRAME_BYTES`` of tar stream each
(``pack.py``), each compressed on its own with its content size and checksum in it. Frames that
share nothing can be compressed, and decompressed, at the same time on different cores, each by
one call into zstd that holds no GIL for its whole length (tens of milliseconds): the GIL changes
hands a few times per frame, never per chunk, which is what keeps the pipeline moving on a
loaded machine.

``frame_span`` finds where a frame ends by walking its block headers (RFC 8878), so frames are
cut out of the compressed stream without decompressing anything. ``OrderedPool`` runs a function
over items on worker threads and gives the results back in the order the items went in.
"""

from __future__ import annotations

import os
import queue
import struct
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["FRAME_BYTES", "FrameError", "FrameSpan", "OrderedPool", "frame_span", "worker_count"]

FRAME_BYTES = 32 << 20  # tar bytes per frame: large frames keep the ratio close to one long stream
_MAGIC = 0xFD2FB528
_SKIPPABLE_MASK, _SKIPPABLE = 0xFFFFFFF0, 0x184D2A50
_BLOCK_RESERVED = 3

Item = TypeVar("Item")
Result = TypeVar("Result")


class FrameError(Exception):
    """The compressed stream is not a sequence of zstd frames."""


class FrameSpan:
    """What a frame's header says, and where the frame ends (None: beyond the bytes at hand)."""

    __slots__ = ("end", "content_size", "skippable")

    def __init__(self, end: int | None, content_size: int | None, skippable: bool = False) -> None:
        self.end = end
        self.content_size = content_size
        self.skippable = skippable


def worker_count() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def frame_span(data: Any, start: int) -> FrameSpan | None:
    """The frame that begins at ``data[start]``: its content size, and its end once ``data`` holds
    all of it; None while ``data`` holds only part of its header.

    Raises:
        FrameError: no frame begins there (a bad magic number, a reserved bit or block type).
    """
    size = len(data)
    if size - start < 4:
        return None
    magic = _magic(data, start)
    if magic & _SKIPPABLE_MASK == _SKIPPABLE:
        return _skippable(data, start, size)
    if magic != _MAGIC:
        raise FrameError("not a zstd frame (bad magic number)")
    if size - start < 5:
        return None
    descriptor = data[start + 4]
    if descriptor & 0x08:
        raise FrameError("a reserved bit of a zstd frame header is set")
    single = descriptor >> 5 & 1
    size_bytes = ((1 if single else 0), 2, 4, 8)[descriptor >> 6]
    position = start + 5 + (0 if single else 1) + (0, 1, 2, 4)[descriptor & 3]
    if size - position < size_bytes:
        return None
    content_size: int | None = None
    if size_bytes:
        content_size = int.from_bytes(data[position:position + size_bytes], "little")
        content_size += 256 if size_bytes == 2 else 0
    position += size_bytes
    checksum = 4 if descriptor & 0x04 else 0
    while True:
        if size - position < 3:
            return FrameSpan(None, content_size)
        header = data[position] | data[position + 1] << 8 | data[position + 2] << 16
        kind, length = header >> 1 & 3, header >> 3
        if kind == _BLOCK_RESERVED:
            raise FrameError("a zstd block has the reserved type")
        position += 3 + (1 if kind == 1 else length)
        if header & 1:  # the frame's last block
            position += checksum
            return FrameSpan(position if position <= size else None, content_size)


def _magic(data: Any, start: int) -> int:
    value: int = struct.unpack_from("<I", data, start)[0]
    return value


def _skippable(data: Any, start: int, size: int) -> FrameSpan | None:
    if size - start < 8:
        return None
    end = start + 8 + struct.unpack_from("<I", data, start + 4)[0]
    return FrameSpan(end if end <= size else None, 0, skippable=True)


class _Job(Generic[Item, Result]):
    __slots__ = ("item", "result", "error", "done")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.result: Result | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()


class OrderedPool(Generic[Item, Result]):
    """``function(item, state)`` on ``workers`` threads (``state``: one ``make_state()`` per thread,
    a zstd context), results in the order the items were submitted.

    The function must spend its time in C code that releases the GIL (zstd does), or the threads
    only take turns.
    """

    def __init__(self, function: Callable[[Item, Any], Result], make_state: Callable[[], Any], workers: int,
                 name: str) -> None:
        self._function = function
        self._make_state = make_state
        self._jobs: queue.SimpleQueue[_Job[Item, Result] | None] = queue.SimpleQueue()
        self._pending: deque[_Job[Item, Result]] = deque()
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{n}", daemon=True)
                         for n in range(max(1, workers))]
        for thread in self._threads:
            thread.start()

    def __len__(self) -> int:
        return len(self._pending)

    def submit(self, item: Item) -> None:
        job: _Job[Item, Result] = _Job(item)
        self._pending.append(job)
        self._jobs.put(job)

    def ready(self) -> bool:
        """Whether the oldest result is there (``pop`` would not wait)."""
        return bool(self._pending) and self._pending[0].done.is_set()

    def pop(self) -> Result:
        """The oldest result (waits for it); its error is raised here."""
        job = self._pending.popleft()
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    def close(self) -> None:
        """Stop the threads once the submitted work is done; results not popped are dropped."""
        for _thread in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()
        self._pending.clear()

    def _run(self) -> None:
        state = self._make_state()
        while (job := self._jobs.get()) is not None:
            try:
                job.result = self._function(job.item, state)
            except BaseException as exc:  # noqa: BLE001 - raised to the caller by pop()
                job.error = exc
            job.done.set()
