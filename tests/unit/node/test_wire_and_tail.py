"""The WAL shipping format and the incremental WAL reader, against real WAL files."""

from __future__ import annotations

from pathlib import Path

import pytest

from engines import create_engine
from engines.errors import CorruptionError
from engines.node.wal_tail import WalGoneError, WalTail
from engines.node.wire import decode_frames, encode_frames, encode_record
from engines.wal import WalReader


def _engine(path: Path, records: int):
    engine = create_engine(path, "lsm", wal_segment_bytes=64 * 1024)
    for i in range(records):
        engine.put(f"k{i:05d}".encode(), bytes([i % 251]) * (i % 700))
    engine.write_batch([(b"a", b"1"), (b"k00000", None)])
    return engine


def test_tail_reads_every_record_across_segments_as_the_reader_does(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "d", 3000)
    try:
        tail = WalTail(engine.wal_dir)
        shipped = []
        lsn = 1
        while lsn <= engine.last_lsn:
            batch = tail.read(lsn, engine.last_lsn, max_bytes=50_000)
            shipped += decode_frames(encode_frames(batch.payloads))
            lsn = batch.last_lsn + 1
        expected = list(WalReader(engine.wal_dir).records())
        assert len(list(engine.wal_dir.iterdir())) > 3
        assert [encode_record(r) for r in shipped] == [encode_record(r) for r in expected]
        assert batch.remaining_bytes == 0
        middle = tail.read(1500, 1600)  # a fresh position: found by scanning its segment
        assert [r.lsn for r in decode_frames(encode_frames(middle.payloads))] == list(range(1500, 1601))
    finally:
        engine.close()


def test_tail_says_gone_for_recycled_lsns(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "d", 3000)
    try:
        engine.flush()
        oldest = WalTail(engine.wal_dir).oldest_lsn()
        assert oldest is not None and oldest > 1
        with pytest.raises(WalGoneError) as caught:
            WalTail(engine.wal_dir).read(1, engine.last_lsn)
        assert caught.value.oldest == oldest
    finally:
        engine.close()


def test_frames_detect_damage_in_transit(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "d", 10)
    try:
        body = encode_frames(WalTail(engine.wal_dir).read(1, engine.last_lsn).payloads)
    finally:
        engine.close()
    assert len(decode_frames(body)) == 11
    flipped = bytearray(body)
    flipped[20] ^= 0x01
    with pytest.raises(CorruptionError, match="checksum mismatch"):
        decode_frames(bytes(flipped))
    with pytest.raises(CorruptionError, match="truncated"):
        decode_frames(body[:-3])
