"""Writing and reading back: framing across blocks, segments, reopening, copying records."""

from __future__ import annotations

import struct
from pathlib import Path

import crc32c
import pytest
from wal_testkit import BLOCK, HEADER, lsns, place_records, write_log

from engines.errors import ClosedError, CorruptionError, InvalidArgumentError
from engines.wal import (
    Op,
    RecoveryMode,
    WalReader,
    WalRecord,
    WalWriter,
    decode_batch,
    encode_batch,
    list_segments,
    segment_name,
)

EDGE_SIZES = [0, 1, BLOCK - HEADER, 100 * 1024, BLOCK - HEADER - 25 - 10, BLOCK - HEADER - 25 - 9, 5, BLOCK * 3 + 1]


def test_records_round_trip_across_fragment_boundaries(tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    placed = write_log(wal, EDGE_SIZES * 3)
    reopened = list(WalReader(wal).records())
    assert lsns(reopened) == list(range(1, len(EDGE_SIZES) * 3 + 1))
    for number, (record, size) in enumerate(zip(reopened, EDGE_SIZES * 3)):
        assert record.op is Op.PUT and record.key == b"key-%06d" % number
        assert len(record.value) == size and record.timestamp_ns == 1_000 + number
    # Records bigger than a block really were split, and fragments never cross a block.
    assert any(len(p.fragments) >= 4 for p in placed)
    for p in placed:
        for start, end in p.fragments:
            assert start // BLOCK == (end - 1) // BLOCK
    # The file ends exactly after the last fragment: no padding, no preallocation.
    last = placed[-1]
    assert (wal / last.segment).stat().st_size == last.end


def test_on_disk_bytes_follow_the_documented_format(tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    with WalWriter(wal, next_lsn=7) as writer:
        writer.append(Op.PUT, b"k", b"value", timestamp_ns=123)
    data = (wal / segment_name(7)).read_bytes()
    payload = struct.pack("<QQBI", 7, 123, 1, 1) + b"k" + struct.pack("<I", 5) + b"value"
    masked, length, kind = struct.unpack_from("<IHB", data)
    crc = crc32c.crc32c(bytes([1]) + payload)
    assert (length, kind) == (len(payload), 1)
    assert masked == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    assert data[7:] == payload


def test_block_trailers_are_zero_and_skipped(tmp_path: Path) -> None:
    """A record that leaves 1..6 bytes in a block: the rest is a zero trailer, the next record
    starts the next block."""
    wal = tmp_path / "wal"
    first_size = BLOCK - 3 - HEADER - 25 - len(b"key-000000")  # leaves exactly 3 bytes
    placed = write_log(wal, [first_size, 10])
    assert placed[0].end == BLOCK - 3
    assert placed[1].start == BLOCK
    data = (wal / placed[0].segment).read_bytes()
    assert data[BLOCK - 3 : BLOCK] == b"\0\0\0"


def test_segments_seal_at_the_size_limit_and_are_named_by_first_lsn(tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    limit = 64 * 1024
    placed = write_log(wal, [10_000] * 40, segment_bytes=limit)
    segments = list_segments(wal)
    assert len(segments) >= 5
    by_segment: dict[str, list[int]] = {}
    for p in placed:
        by_segment.setdefault(p.segment, []).append(p.record.lsn)
    for info in segments:
        assert info.size > 0  # no empty segments
        assert info.path.name == segment_name(info.first_lsn)
        assert by_segment[info.path.name][0] == info.first_lsn
    for info in segments[:-1]:
        # Sealed once it reached the limit, at a record boundary: at most one record over.
        assert limit <= info.size < limit + 10_100
    assert segments[-1].size < limit + 10_100


def test_reopen_continues_lsns_in_a_new_segment(tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    write_log(wal, [10] * 5)
    last = WalReader(wal).validate().last_lsn
    assert last == 5
    with WalWriter(wal, next_lsn=last + 1) as writer:
        assert writer.append(Op.DELETE, b"key-000001") == 6
        assert writer.append_batch([(b"a", b"1"), (b"b", None)]) == 7
    assert [info.first_lsn for info in list_segments(wal)] == [1, 6]
    records = list(WalReader(wal).records())
    assert lsns(records) == list(range(1, 8))
    assert records[5].entries() == [(b"key-000001", None)]
    assert records[6].entries() == [(b"a", b"1"), (b"b", None)]
    assert records[6].op is Op.BATCH and records[6].key == b""


def test_writer_refuses_to_reuse_lsns(tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    write_log(wal, [10] * 5)
    with pytest.raises(InvalidArgumentError):
        WalWriter(wal, next_lsn=1)
    # An empty file left by a crash right after a segment was created is reused, not an error.
    (wal / segment_name(6)).write_bytes(b"")
    with WalWriter(wal, next_lsn=6) as writer:
        writer.append(Op.PUT, b"x", b"y")
    assert lsns(WalReader(wal).records()) == [1, 2, 3, 4, 5, 6]


def test_append_record_copies_a_log_exactly(tmp_path: Path) -> None:
    source = tmp_path / "source"
    write_log(source, [0, 1, 50_000, 3])
    with WalWriter(source, next_lsn=5) as writer:
        writer.append_batch([(b"k", None), (b"", b"")], timestamp_ns=99)
    original = list(WalReader(source).records())
    copy = tmp_path / "copy"
    with WalWriter(copy, next_lsn=1) as writer:
        for record in original:
            assert writer.append_record(record) == record.lsn
        with pytest.raises(InvalidArgumentError):
            writer.append_record(original[0])  # LSN 1 again: not the next one
    copied = list(WalReader(copy).records())
    fields = [(r.lsn, r.timestamp_ns, r.op, r.key, r.value) for r in copied]
    assert fields == [(r.lsn, r.timestamp_ns, r.op, r.key, r.value) for r in original]


def test_from_and_to_lsn_skip_whole_segments(tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    placed = write_log(wal, [10_000] * 30, segment_bytes=40 * 1024)
    segments = list_segments(wal)
    assert len(segments) >= 4
    # Damage the first segment: a reader starting past it must not even open it.
    segments[0].path.write_bytes(b"\xff" * 100)
    start = segments[2].first_lsn + 1
    got = list(WalReader(wal).records(from_lsn=start, to_lsn=start + 5, mode=RecoveryMode.ABSOLUTE_CONSISTENCY))
    assert lsns(got) == list(range(start, start + 6))
    assert got[0].segment == segments[2].path.name
    assert [p.record.offset for p in placed if p.record.lsn == start] == [got[0].offset]


def test_writer_state_flush_seal_and_current_segment(tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    writer = WalWriter(wal, next_lsn=10)
    assert writer.current_segment() is None and writer.seal() is None
    assert not wal.exists()  # created lazily, with the first segment
    lsn = writer.append(Op.PUT, b"a", b"1")
    assert (lsn, writer.last_lsn, writer.next_lsn, writer.durable_lsn) == (10, 10, 11, 9)
    path, written = writer.current_segment()  # type: ignore[misc]
    assert path.name == segment_name(10) and written == 0  # still buffered
    writer.flush()
    assert writer.current_segment()[1] == path.stat().st_size > 0  # type: ignore[index]
    assert writer.seal() == path and writer.durable_lsn == 10
    assert writer.current_segment() is None
    writer.append(Op.PUT, b"b", b"2")
    assert writer.current_segment()[0].name == segment_name(11)  # type: ignore[index]
    writer.close()
    writer.close()  # twice is harmless
    with pytest.raises(ClosedError):
        writer.append(Op.PUT, b"c", b"3")
    assert lsns(WalReader(wal).records()) == [10, 11]


@pytest.mark.parametrize(
    "call",
    [
        lambda w: w.append(Op.PUT, "text", b"v"),
        lambda w: w.append(Op.PUT, b"k", "v"),
        lambda w: w.append(9, b"k", b"v"),
        lambda w: w.append(Op.DELETE, b"k", b"v"),
        lambda w: w.append(Op.PUT, b"k", b"v", timestamp_ns=-1),
        lambda w: w.append_batch([(b"k", "v")]),
        lambda w: w.append_batch([b"k"]),
        lambda w: w.sync(5),
    ],
    ids=[
        "str-key",
        "str-value",
        "bad-op",
        "delete-with-value",
        "negative-time",
        "str-in-batch",
        "not-a-pair",
        "unassigned",
    ],
)
def test_bad_arguments_are_refused_without_writing(tmp_path: Path, call: object) -> None:
    wal = tmp_path / "wal"
    with WalWriter(wal, next_lsn=1) as writer:
        with pytest.raises(InvalidArgumentError):
            call(writer)  # type: ignore[operator]
        assert writer.next_lsn == 1
    assert list_segments(wal) == []


def test_bad_options_and_bounds(tmp_path: Path) -> None:
    for options in ({"next_lsn": 0}, {"next_lsn": 1, "durability": "maybe"}, {"next_lsn": 1, "segment_bytes": 10}):
        with pytest.raises(InvalidArgumentError):
            WalWriter(tmp_path / "wal", **options)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        WalReader(tmp_path / "wal").records(mode="whatever")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        WalReader(tmp_path / "wal").records(from_lsn=-1)


def test_missing_and_empty_wal_dirs_are_empty_logs(tmp_path: Path) -> None:
    for wal in (tmp_path / "missing", tmp_path / "empty"):
        if wal.name == "empty":
            wal.mkdir()
            (wal / "notes.txt").write_text("not a segment")  # ignored: wrong name
        assert list_segments(wal) == []
        assert list(WalReader(wal).records(mode=RecoveryMode.ABSOLUTE_CONSISTENCY)) == []
        assert WalReader(wal).validate().to_json() == {
            "ok": True,
            "records": 0,
            "first_lsn": None,
            "last_lsn": None,
            "corruption": None,
            "segments": 0,
            "bytes": 0,
        }
        assert WalReader(wal).problems() == []
    assert not (tmp_path / "missing").exists()  # reading never creates anything


def test_empty_segment_file_is_harmless(tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    write_log(wal, [10] * 3)
    (wal / segment_name(4)).write_bytes(b"")
    validation = WalReader(wal).validate()
    assert validation.ok and validation.records == 3 and validation.segments == 2


def test_record_entries_and_batch_codec() -> None:
    put = WalRecord(1, 0, Op.PUT, b"k", b"v", "s", 0)
    delete = WalRecord(2, 0, Op.DELETE, b"k", b"", "s", 0)
    batch = WalRecord(3, 0, Op.BATCH, b"", encode_batch([(b"a", b""), (b"b", None)]), "s", 0)
    assert put.entries() == [(b"k", b"v")]
    assert delete.entries() == [(b"k", None)]
    assert batch.entries() == [(b"a", b""), (b"b", None)]
    assert decode_batch(encode_batch([])) == []
    for broken in (b"", b"\x01\x00\x00\x00", encode_batch([(b"a", b"1")]) + b"x", encode_batch([(b"a", b"12")])[:-1]):
        with pytest.raises(CorruptionError):
            decode_batch(broken)


def test_records_are_frozen_and_placed(tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    write_log(wal, [3])
    (record,) = place_records(wal)
    with pytest.raises(AttributeError):
        record.record.lsn = 5  # type: ignore[misc]
    assert record.record == WalRecord(1, 1_000, Op.PUT, b"key-000000", record.record.value, segment_name(1), 0)
