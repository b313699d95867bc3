"""The zstd frame walk, the WAL tail check, and the pydantic-free metadata and marker models."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from engines import create_engine
from engines.backup.metadata import BackupMetadata
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
