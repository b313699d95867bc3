"""Where the frames of a zstd stream end, from the compressed bytes alone (RFC 8878, section 3.1).

zstd's own stream reader stops quietly when its input runs out, even in the middle of a frame
(before the content checksum that would have caught the cut). ``FrameWalk`` follows the frame and
block headers of the bytes it is fed, skipping the block contents, so that at the end of the input
the reader can tell a stream that ends on a frame boundary from one cut short. It decodes nothing
and checks no data: that is zstd's work, done beside it.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["FrameWalk"]

ZSTD_MAGIC = 0xFD2FB528
SKIPPABLE_MAGIC, SKIPPABLE_MASK = 0x184D2A50, 0xFFFFFFF0
_RLE_BLOCK = 1
_DICT_ID_BYTES = (0, 1, 2, 4)
_CONTENT_SIZE_BYTES = (0, 2, 4, 8)  # by Frame_Content_Size_flag; flag 0 means 1 byte in a single segment
_CHECKSUM_BYTES = 4


class FrameWalk:
    """Follows frame and block headers through compressed bytes fed in arbitrary chunks."""

    def __init__(self) -> None:
        self.frames = 0  # frames whose last block header has been seen (skippable ones too)
        self.lost = False  # a frame began with a magic number that is neither zstd's nor skippable
        self._wanted = bytearray()
        self._need = 4
        self._step: Callable[[bytes], None] = self._magic
        self._skip = 0
        self._checksum = False

    @property
    def complete(self) -> bool:
        """The bytes fed so far end exactly at the end of a frame."""
        return self.frames > 0 and not self.lost and self._at_frame_start()

    def _at_frame_start(self) -> bool:
        return not self._skip and not self._wanted and self._step == self._magic

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view and not self.lost:
            if self._skip:
                take = min(self._skip, len(view))
                self._skip -= take
                view = view[take:]
                continue
            take = min(self._need - len(self._wanted), len(view))
            self._wanted += view[:take]
            view = view[take:]
            if len(self._wanted) == self._need:
                header = bytes(self._wanted)
                self._wanted.clear()
                self._step(header)

    def _expect(self, size: int, step: Callable[[bytes], None]) -> None:
        self._need, self._step = size, step

    def _magic(self, header: bytes) -> None:
        magic = int.from_bytes(header, "little")
        if magic == ZSTD_MAGIC:
            self._expect(1, self._descriptor)
        elif magic & SKIPPABLE_MASK == SKIPPABLE_MAGIC:
            self._expect(4, self._skippable)
        else:
            self.lost = True  # zstd rejects it too ("Unknown frame descriptor")

    def _skippable(self, header: bytes) -> None:
        self._skip = int.from_bytes(header, "little")
        self.frames += 1
        self._expect(4, self._magic)

    def _descriptor(self, header: bytes) -> None:
        descriptor = header[0]
        single_segment = bool(descriptor & 0x20)
        content_size = _CONTENT_SIZE_BYTES[descriptor >> 6] or (1 if single_segment else 0)
        self._checksum = bool(descriptor & 0x04)
        # The window descriptor (absent in a single segment), the dictionary ID, the content size.
        self._skip = (0 if single_segment else 1) + _DICT_ID_BYTES[descriptor & 0x03] + content_size
        self._expect(3, self._block)

    def _block(self, header: bytes) -> None:
        value = int.from_bytes(header, "little")
        size = value >> 3
        self._skip = 1 if (value >> 1) & 0x03 == _RLE_BLOCK else size
        if value & 0x01:  # the frame's last block
            self._skip += _CHECKSUM_BYTES if self._checksum else 0
            self.frames += 1
            self._expect(4, self._magic)
        else:
            self._expect(3, self._block)
