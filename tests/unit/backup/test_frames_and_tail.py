"""The zstd frame walk, the WAL tail check, and the pydantic-free metadata and marker models."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
import zstandard

from engines import create_engine
from engines.backup.frames import FrameDecoder, FrameError, FrameSplitter
from engines.backup.metadata import BackupMetadata
from engines.errors import WalCorruptionError
from engines.marker import Marker
from engines.wal import list_segments
from engines.wal.files import _tail_from_last_blocks, segment_tail
from engines.wal.scan import Action, scan_segments


def _decode(stream: bytes, piece: int, workers: int = 1) -> bytes:
    splitter, decoder = FrameSplitter(), FrameDecoder(workers=workers)
    out = []
    try:
        for start in range(0, len(stream), piece):
            for kind, data in splitter.feed(stream[start:start + piece]):
                out.extend(decoder.add(kind, data))
        assert not splitter.inside
        out.extend(decoder.drain())
    finally:
        decoder.close()
    return b"".join(out)


@pytest.mark.parametrize("piece", [1, 7, 4096, 1 << 20])
def test_frames_come_back_in_order_whatever_the_pieces(piece: int) -> None:
    rng = random.Random(piece)
    parts = [rng.randbytes(rng.randrange(1, 200_000)) + b"x" * rng.randrange(0, 50_000) for _ in range(6)]
    compressor = zstandard.ZstdCompressor(level=3, write_checksum=True)
    skippable = (0x184D2A53).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"skip!"
    stream = b"".join(compressor.compress(part) for part in parts[:3]) + skippable + \
        b"".join(compressor.compress(part) for part in parts[3:])
    assert _decode(stream, piece) == b"".join(parts)


def test_a_streamed_frame_without_a_content_size_is_decoded_too() -> None:
    data = os.urandom(300_000) * 3
    writer_frames = zstandard.ZstdCompressor(level=1, threads=2).compress(data)  # one frame
    import engines.backup.frames as frames

    before, frames.WHOLE_FRAME_BYTES = frames.WHOLE_FRAME_BYTES, 10_000  # force the streaming path
    try:
        assert _decode(writer_frames + zstandard.ZstdCompressor().compress(b"tail"), 65536) == data + b"tail"
    finally:
        frames.WHOLE_FRAME_BYTES = before


def test_damage_is_reported_not_decoded() -> None:
    frame = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(os.urandom(50_000)))
    with pytest.raises(FrameError):
        _decode(b"not zstd at all", 4)
    truncated = bytes(frame[:-10])
    splitter = FrameSplitter()
    list(splitter.feed(truncated))
    assert splitter.inside  # the caller reports "cut short"
    frame[len(frame) // 2] ^= 0xFF
    with pytest.raises((zstandard.ZstdError, FrameError)):
        _decode(bytes(frame), 1000)


def test_the_wal_tail_from_the_last_blocks_equals_a_full_scan(tmp_path: Path) -> None:
    rng = random.Random(5)
    with create_engine(tmp_path / "d", "lsm", durability="async", wal_segment_bytes=200_000,
                       wal_keep_segments=1000, checkpoint_every_records=10**9) as engine:
        for n in range(2500):
            engine.put(b"k%d" % n, os.urandom(rng.choice([0, 10, 300, 5000, 33_000, 90_000])))
    segments = list_segments(tmp_path / "d" / "wal")
    assert len(segments) > 20
    for segment in segments:
        last = None
        for record in scan_segments([segment], 0, 1 << 64, lambda *args: Action.STOP):
            last = (record.lsn, record.timestamp_ns)
        assert _tail_from_last_blocks(segment) == last == segment_tail(segment)
    torn = segments[-1]
    torn.path.write_bytes(torn.path.read_bytes()[:-5])
    with pytest.raises(WalCorruptionError):
        segment_tail(list_segments(tmp_path / "d" / "wal")[-1])


def test_metadata_and_marker_check_their_fields_and_keep_unknown_ones() -> None:
    fields = dict(backup_id="b", type="full", engine="lsm", timestamp="t", size_bytes=1, size_readable="1B",
                  duration_seconds=1, files=["a"], checksum="c", lsn_start=1, lsn_end=2, retention="r",
                  tier="daily", timestamp_ns=5, lsn_end_time_ns=6)
    raw = {**BackupMetadata(**fields).to_json(), "written_by": "drconsole 9"}  # type: ignore[arg-type]
    again = BackupMetadata.from_json(json.loads(json.dumps(raw)))
    assert again.to_json() == raw and again.duration_seconds == 1.0
    for bad, message in (({**raw, "type": "partial"}, "field 'type'"), ({**raw, "lsn_end": "2"}, "field 'lsn_end'"),
                         ({k: v for k, v in raw.items() if k != "tier"}, "field 'tier': Field required")):
        with pytest.raises(ValueError, match=message):
            BackupMetadata.from_json(bad)
    marker = Marker.model_validate({"backend": "cow", "epoch": 3, "future_field": 1,
                                    "archive": {"repo": "/r", "data_dir": "/d"}})
    assert marker.epoch == 3 and marker.archive is not None and marker.archive.repo == "/r"
    assert json.loads(marker.model_dump_json())["archive"] == {"repo": "/r", "data_dir": "/d", "since": ""}
    assert marker.model_copy(update={"archive": None}).archive is None and marker.archive is not None
    assert marker.model_copy(update={"options": {"low_memory": True}}).options == {"low_memory": True}
    with pytest.raises(ValueError, match="epoch"):
        Marker.model_validate({"backend": "cow", "epoch": "3"})
