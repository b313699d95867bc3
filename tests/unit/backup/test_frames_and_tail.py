"""The zstd frame walk, the WAL tail check, and the pydantic-free metadata and marker models."""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
import zstandard

from engines import create_engine
from engines.backup.metadata import BackupMetadata
from engines.backup.zstd_frames import FrameWalk
from engines.errors import WalCorruptionError
from engines.marker import Marker
from engines.wal import list_segments
from engines.wal.files import _tail_from_last_blocks, segment_tail
from engines.wal.scan import ScanAction, scan_segments


def test_an_archive_of_many_frames_reads_back(tmp_path: Path) -> None:
    """A .zst of several frames (as pack.py writes them), damage and a cut included."""
    import engines.backup.pack as pack
    from engines.backup.pack import members_of, pack_members
    from engines.backup.unpack import read_archive

    source = tmp_path / "source"
    source.mkdir()
    (source / "a").write_bytes(os.urandom(300_000) * 4)
    (source / "b").write_bytes(b"z" * 2_000_000)
    before, pack.FRAME_BYTES = pack.FRAME_BYTES, 256 * 1024  # many frames on little data
    try:
        packed = pack_members(members_of(source), tmp_path / "a.tar.zst")
    finally:
        pack.FRAME_BYTES = before
    archive = tmp_path / "a.tar.zst"
    check = read_archive(archive, expected_sha256=packed.archive_sha256)
    assert check.ok and check.file_count == 2
    data = archive.read_bytes()
    (tmp_path / "cut.tar.zst").write_bytes(data[: len(data) // 2])
    assert not read_archive(tmp_path / "cut.tar.zst").ok
    damaged = bytearray(data)
    damaged[len(data) // 3] ^= 0xFF
    (tmp_path / "bad.tar.zst").write_bytes(bytes(damaged))
    assert not read_archive(tmp_path / "bad.tar.zst").ok


_DICTIONARY = zstandard.train_dictionary(4096, [random.Random(n).randbytes(40) * 5 for n in range(400)])


def _zstd_streams() -> dict[str, bytes]:
    """zstd streams of every shape the frame walk must follow: what pack.py, python-zstandard and the CLI write."""
    rng = random.Random(9)
    data = rng.randbytes(30_000) + bytes(70_000) + rng.randbytes(500) * 200  # raw, RLE and compressed blocks
    streams = {
        f"checksum={checksum},size={size},level={level}": zstandard.ZstdCompressor(
            level=level, write_checksum=checksum, write_content_size=size
        ).compress(data)
        for checksum in (True, False)
        for size in (True, False)
        for level in (1, 19)
    }
    streams["three frames"] = b"".join(streams["checksum=True,size=True,level=1"] for _ in range(3))
    streams["empty frame first"] = zstandard.ZstdCompressor().compress(b"") + streams["three frames"]
    skippable = struct.pack("<II", 0x184D2A5A, 5) + b"hello"
    streams["skippable frames"] = skippable + streams["checksum=True,size=False,level=1"] + skippable[:4] + bytes(4)
    streams["dictionary ID"] = zstandard.ZstdCompressor(dict_data=_DICTIONARY).compress(data[:20_000])
    for name, flags in (("zstd CLI", ["-3"]), ("zstd CLI, small blocks, no check", ["-1", "-B4096", "--no-check"])):
        if shutil.which("zstd"):
            streams[name] = subprocess.run(["zstd", "-qc", *flags], input=data, capture_output=True, check=True).stdout
    return streams


def _boundaries(stream: bytes) -> set[int]:
    """Where zstd itself says the frames end (skippable frames: magic, size, content)."""
    ends, at = set(), 0
    while at < len(stream):
        if stream[at : at + 4] == b"\x28\xb5\x2f\xfd":
            at += _frame_length(stream[at:])
        else:
            at += 8 + int.from_bytes(stream[at + 4 : at + 8], "little")
        ends.add(at)
    return ends


def _frame_length(stream: bytes) -> int:
    reader = zstandard.ZstdDecompressor(dict_data=_DICTIONARY).decompressobj()
    reader.decompress(stream)
    return len(stream) - len(reader.unused_data)


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 30])
def test_the_frame_walk_ends_on_the_end_of_every_stream_zstd_writes(chunk: int) -> None:
    for name, stream in _zstd_streams().items():
        walk = FrameWalk()
        for at in range(0, len(stream), chunk):
            walk.feed(stream[at : at + chunk])
        assert walk.complete and not walk.lost, name
        assert walk.frames == len(_boundaries(stream)), name


def test_a_stream_cut_anywhere_but_at_a_frame_end_is_incomplete() -> None:
    """Every cut of every stream: complete exactly where a frame ends, the content checksum's bytes included."""
    for name, stream in _zstd_streams().items():
        ends = _boundaries(stream)
        cuts = range(len(stream)) if len(stream) < 3000 else [*range(0, 300), *range(len(stream) - 300, len(stream))]
        for cut in [*cuts, *sorted(ends)]:
            walk = FrameWalk()
            walk.feed(stream[:cut])
            assert walk.complete == (cut in ends), (name, cut, len(stream))


def test_bytes_that_are_no_frame_lose_the_walk() -> None:
    walk = FrameWalk()
    walk.feed(zstandard.ZstdCompressor().compress(b"x" * 1000) + b"PK\x03\x04 a zip, not a frame")
    assert walk.lost and not walk.complete and walk.frames == 1


def test_the_wal_tail_from_the_last_blocks_equals_a_full_scan(tmp_path: Path) -> None:
    rng = random.Random(5)
    with create_engine(
        tmp_path / "d",
        "lsm",
        durability="async",
        wal_segment_bytes=200_000,
        wal_keep_segments=1000,
        checkpoint_every_records=10**9,
    ) as engine:
        for n in range(2500):
            engine.put(b"k%d" % n, os.urandom(rng.choice([0, 10, 300, 5000, 33_000, 90_000])))
    segments = list_segments(tmp_path / "d" / "wal")
    assert len(segments) > 20
    for segment in segments:
        last = None
        for record in scan_segments([segment], 0, 1 << 64, lambda *args: ScanAction.STOP):
            last = (record.lsn, record.timestamp_ns)
        assert _tail_from_last_blocks(segment) == last == segment_tail(segment)
    torn = segments[-1]
    torn.path.write_bytes(torn.path.read_bytes()[:-5])
    with pytest.raises(WalCorruptionError):
        segment_tail(list_segments(tmp_path / "d" / "wal")[-1])


def test_metadata_and_marker_check_their_fields_and_keep_unknown_ones() -> None:
    fields = dict(
        backup_id="b",
        type="full",
        engine="lsm",
        timestamp="t",
        size_bytes=1,
        size_readable="1B",
        duration_seconds=1,
        files=["a"],
        checksum="c",
        lsn_start=1,
        lsn_end=2,
        retention="r",
        tier="daily",
        timestamp_ns=5,
        lsn_end_time_ns=6,
    )
    raw = {**BackupMetadata(**fields).to_json(), "written_by": "drconsole 9"}  # type: ignore[arg-type]
    again = BackupMetadata.from_json(json.loads(json.dumps(raw)))
    assert again.to_json() == raw and again.duration_seconds == 1.0
    for bad, message in (
        ({**raw, "type": "partial"}, "field 'type'"),
        ({**raw, "lsn_end": "2"}, "field 'lsn_end'"),
        ({k: v for k, v in raw.items() if k != "tier"}, "field 'tier': Field required"),
    ):
        with pytest.raises(ValueError, match=message):
            BackupMetadata.from_json(bad)
    marker = Marker.model_validate(
        {"backend": "cow", "epoch": 3, "future_field": 1, "archive": {"repo": "/r", "data_dir": "/d"}}
    )
    assert marker.epoch == 3 and marker.archive is not None and marker.archive.repo == "/r"
    assert json.loads(marker.model_dump_json())["archive"] == {"repo": "/r", "data_dir": "/d", "since": ""}
    assert marker.model_copy(update={"archive": None}).archive is None and marker.archive is not None
    assert marker.model_copy(update={"options": {"low_memory": True}}).options == {"low_memory": True}
    with pytest.raises(ValueError, match="epoch"):
        Marker.model_validate({"backend": "cow", "epoch": "3"})
