"""Helpers for the WAL tests: write a known log, and know where every record and fragment lies.

The layout is recomputed here from the format's rules (32 KiB blocks, 7-byte headers, trailers
under 7 bytes), independently of ``engines.wal.format``, so a framing bug cannot hide itself.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from engines.wal import Op, WalReader, WalRecord, WalWriter, list_segments

__all__ = ["BLOCK", "HEADER", "Placed", "write_log", "place_records", "next_block", "flip_byte", "lsns"]

BLOCK = 32 * 1024
HEADER = 7
PAYLOAD_FIXED = 8 + 8 + 1 + 4 + 4


@dataclass(frozen=True)
class Placed:
    """A record and where its bytes are: fragments as (header offset, end) in its segment."""

    record: WalRecord
    fragments: tuple[tuple[int, int], ...]

    @property
    def segment(self) -> str:
        return self.record.segment

    @property
    def start(self) -> int:
        return self.record.offset

    @property
    def end(self) -> int:
        return self.fragments[-1][1]


def next_block(position: int) -> int:
    return (position // BLOCK + 1) * BLOCK


def _fragments(start: int, payload_size: int) -> tuple[tuple[int, int], ...]:
    position = start
    remaining = payload_size
    spans = []
    while True:
        left = BLOCK - position % BLOCK
        if left < HEADER:
            position += left
            left = BLOCK
        size = min(left - HEADER, remaining)
        spans.append((position, position + HEADER + size))
        position += HEADER + size
        remaining -= size
        if remaining == 0:
            return tuple(spans)


def place_records(wal_dir: Path) -> list[Placed]:
    """Read a sound log and attach the fragment layout of each record."""
    placed = []
    for record in WalReader(wal_dir).records(mode="absolute_consistency"):
        size = PAYLOAD_FIXED + len(record.key) + len(record.value)
        placed.append(Placed(record, _fragments(record.offset, size)))
    return placed


def write_log(
    wal_dir: Path,
    sizes: list[int],
    *,
    segment_bytes: int = 64 * 2**20,
    seed: int = 0,
    next_lsn: int = 1,
) -> list[Placed]:
    """Write one PUT per entry of ``sizes`` (value of that many bytes), close, and place them."""
    rng = random.Random(seed)
    writer = WalWriter(wal_dir, next_lsn=next_lsn, segment_bytes=segment_bytes)
    for number, size in enumerate(sizes):
        writer.append(Op.PUT, b"key-%06d" % number, rng.randbytes(size), timestamp_ns=1_000 + number)
    writer.close()
    placed = place_records(wal_dir)
    assert [p.record.lsn for p in placed] == list(range(next_lsn, next_lsn + len(sizes)))
    return placed


def flip_byte(path: Path, offset: int, xor: int) -> None:
    """Corrupt one byte in place (``xor`` must be non-zero)."""
    assert xor % 256
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([byte ^ (xor % 256)]))


def lsns(records: object) -> list[int]:
    return [record.lsn for record in records]  # type: ignore[attr-defined]


def segment_paths(wal_dir: Path) -> dict[str, Path]:
    return {info.path.name: info.path for info in list_segments(wal_dir)}
