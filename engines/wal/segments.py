"""Segment files: ``<data-dir>/wal/<first_lsn:020d>.wal``, named by the LSN of their first record.

The zero-padded name makes lexical order LSN order (for ``ls`` and for archive tools), and lets
readers skip whole segments below a starting LSN without opening them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from engines.errors import map_os_error
from engines.wal.format import HEADER_SIZE
from engines.wal.records import PAYLOAD_PREFIX

__all__ = ["SEGMENT_SUFFIX", "SegmentInfo", "segment_name", "list_segments", "read_segment", "first_timestamp_ns"]

SEGMENT_SUFFIX = ".wal"
_SEGMENT_NAME = re.compile(r"^(\d{20})\.wal$")


@dataclass(frozen=True)
class SegmentInfo:
    """A segment file on disk.

    Attributes:
        path: the file.
        first_lsn: LSN of its first record, from its name.
        size: its size in bytes when listed.
    """

    path: Path
    first_lsn: int
    size: int


def segment_name(first_lsn: int) -> str:
    """File name of the segment whose first record has ``first_lsn``."""
    return f"{first_lsn:020d}{SEGMENT_SUFFIX}"


def list_segments(wal_dir: Path) -> list[SegmentInfo]:
    """The segments in ``wal_dir``, sorted by first LSN.

    Other files (temp files of an atomic replace, notes left by an operator) are ignored, and a
    missing directory is an empty log rather than an error: a data dir that never wrote has none.
    """
    wal_dir = Path(wal_dir)
    try:
        entries = list(os.scandir(wal_dir))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise map_os_error(exc, f"listing WAL segments in {wal_dir}") from exc
    segments = []
    for entry in entries:
        match = _SEGMENT_NAME.match(entry.name)
        if match is None:
            continue
        try:
            if not entry.is_file():
                continue
            size = entry.stat().st_size
        except FileNotFoundError:
            continue  # archived or quarantined while we listed
        segments.append(SegmentInfo(Path(entry.path), int(match.group(1)), size))
    segments.sort(key=lambda segment: segment.first_lsn)
    return segments


def read_segment(path: Path) -> bytes:
    """The whole segment file (segments are bounded by the size limit, 64 MiB by default)."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise map_os_error(exc, f"reading WAL segment {path}") from exc


def first_timestamp_ns(path: Path) -> int | None:
    """The time stamp of a segment's first record, read from its first bytes without a CRC check.

    For estimates only (how long a segment's oldest write has waited for the archive); None when
    the file is empty or unreadable.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(HEADER_SIZE + PAYLOAD_PREFIX.size)
    except OSError:
        return None
    if len(head) < HEADER_SIZE + PAYLOAD_PREFIX.size:
        return None
    _lsn, timestamp_ns, _op, _key_length = PAYLOAD_PREFIX.unpack_from(head, HEADER_SIZE)
    return int(timestamp_ns)
