"""SSTables on real files: round trips, point reads, range chunks, and every block kind corrupted."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lsm_unit_kit import flip, write_table

from engines.errors import CorruptionError, InvalidArgumentError
from engines.lsm.block_cache import BlockCache
from engines.lsm.merge import live_rows
from engines.lsm.sstable_format import FOOTER_SIZE, MAGIC, decode_block, encode_block
from engines.lsm.sstable_reader import MISSING, TableCorruptionError, open_table
from engines.lsm.sstable_writer import TableWriter
from engines.lsm.verify import verify_table
from engines.reports import VerifyReport

ENTRIES: dict[bytes, bytes | None] = {
    b"key%05d" % i: (None if i % 7 == 3 else b"value-%d" % i * (i % 5)) for i in range(400)
}


@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_round_trip_holds_every_entry_and_tombstone(tmp_path: Path, compression: str) -> None:
    meta = write_table(tmp_path, 1, ENTRIES, compression=compression)
    assert (meta.entries, meta.tombstones) == (400, sum(1 for v in ENTRIES.values() if v is None))
    assert (meta.min_key, meta.max_key) == (b"key00000", b"key00399")
    reader = open_table(tmp_path, 1, cache=BlockCache(1 << 20))
    assert len(reader.index_keys) > 10  # many blocks at 512 bytes
    for key, value in ENTRIES.items():
        assert reader.get(key) == value  # None: the tombstone itself
    assert reader.get(b"key00000x") is MISSING
    assert reader.get(b"a") is MISSING and reader.get(b"z") is MISSING
    rows = list(live_rows(reader.chunks(None, None)))
    assert rows == sorted((k, v) for k, v in ENTRIES.items() if v is not None)
    report = VerifyReport(backend="lsm")
    assert verify_table(reader, report, meta), report.problems
    assert report.checked["entries"] == 400


def test_range_chunks_are_clipped_to_start_and_end(tmp_path: Path) -> None:
    write_table(tmp_path, 1, ENTRIES)
    reader = open_table(tmp_path, 1)
    for start, end in [
        (b"key00010", b"key00020"),
        (b"key000105", b"key00399"),
        (None, b"key00001"),
        (b"key00398", None),
        (b"a", b"b"),
        (b"key00100", b"key00100\x00"),
    ]:
        expected = [
            (k, v) for k, v in sorted(ENTRIES.items()) if (start is None or k >= start) and (end is None or k < end)
        ]
        got = [pair for keys, values in reader.chunks(start, end) for pair in zip(keys, values)]
        assert got == expected, (start, end)


def test_values_larger_than_a_block_and_empty_values(tmp_path: Path) -> None:
    entries: dict[bytes, bytes | None] = {b"big": b"x" * 20000, b"empty": b"", b"gone": None, b"small": b"s"}
    write_table(tmp_path, 3, entries, compression="zstd")
    reader = open_table(tmp_path, 3)
    assert reader.get(b"big") == b"x" * 20000
    assert reader.get(b"empty") == b""
    assert reader.get(b"gone") is None
    assert list(live_rows(reader.chunks(None, None))) == [(b"big", b"x" * 20000), (b"empty", b""), (b"small", b"s")]


def test_writer_refuses_unsorted_keys_and_empty_tables(tmp_path: Path) -> None:
    writer = TableWriter(tmp_path, 1, level=0)
    writer.add_many([b"b"], [b"1"])
    with pytest.raises(InvalidArgumentError):
        writer.add_many([b"a"], [b"2"])
    writer.abandon()
    empty = TableWriter(tmp_path, 2, level=0)
    with pytest.raises(InvalidArgumentError):
        empty.finish(min_lsn=1, max_lsn=1, durable_lsn=1)
    assert list(tmp_path.iterdir()) == []  # no temp file left behind


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.binary(min_size=1, max_size=20), st.none() | st.binary(max_size=300), max_size=60))
def test_block_codec_round_trips(entries: dict[bytes, bytes | None]) -> None:
    keys = sorted(entries)
    decoded = decode_block(encode_block(keys, [entries[k] for k in keys]))
    assert decoded == (keys, [entries[k] for k in keys])


# ---------------------------------------------------------------- corruption of each block kind
def _layout(path: Path) -> dict[str, tuple[int, int]]:
    """Per block kind: (where the block starts, a byte inside it to flip)."""
    raw = path.read_bytes()
    footer = raw[-FOOTER_SIZE:]
    index_offset, _, bloom_offset, _, props_offset, _ = struct.unpack_from("<QIQIQI", footer)
    footer_offset = len(raw) - FOOTER_SIZE
    return {
        "data": (0, 3),
        "index": (index_offset, index_offset + 2),
        "bloom": (bloom_offset, bloom_offset + 10),
        "properties": (props_offset, props_offset + 4),
        "footer": (footer_offset, footer_offset + 2),
    }


def _problems(tmp_path: Path, number: int) -> list[tuple[str, int | None]]:
    report = VerifyReport(backend="lsm")
    try:
        reader = open_table(tmp_path, number)
    except TableCorruptionError as exc:
        return [(exc.kind, exc.offset)]
    verify_table(reader, report)
    return [(problem.kind, problem.offset) for problem in report.problems]


@pytest.mark.parametrize("kind", ["data", "index", "bloom", "properties", "footer"])
def test_a_flipped_byte_in_each_block_kind_is_detected(tmp_path: Path, kind: str) -> None:
    write_table(tmp_path, 1, ENTRIES, compression="zstd")
    path = tmp_path / "sstables" / "000001.sst"
    block_start, target = _layout(path)[kind]
    flip(path, target, 0x01)
    problems = _problems(tmp_path, 1)
    assert problems, f"a flipped {kind} byte went unnoticed"
    assert problems[0] == ({"data": "checksum"}.get(kind, kind), block_start)


def test_a_damaged_data_block_raises_on_read_and_other_blocks_still_read(tmp_path: Path) -> None:
    write_table(tmp_path, 1, ENTRIES)
    path = tmp_path / "sstables" / "000001.sst"
    reader = open_table(tmp_path, 1)
    second_block = reader.offsets[1]
    flip(path, second_block + 5)
    reader = open_table(tmp_path, 1)
    first_block_key = reader.index_keys[0]
    damaged_key = reader.index_keys[1]
    assert reader.get(first_block_key) == ENTRIES[first_block_key]
    with pytest.raises(CorruptionError) as caught:
        reader.get(damaged_key)
    assert caught.value.file == "sstables/000001.sst" and caught.value.offset == second_block
    with pytest.raises(CorruptionError):
        list(live_rows(reader.chunks(None, None)))


def test_a_table_from_a_future_format_version_is_named_as_such(tmp_path: Path) -> None:
    write_table(tmp_path, 1, ENTRIES)
    path = tmp_path / "sstables" / "000001.sst"
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, len(raw) - 12, 9)  # the version field, just before the magic
    path.write_bytes(bytes(raw))
    with pytest.raises(TableCorruptionError) as caught:
        open_table(tmp_path, 1)
    assert caught.value.kind == "format-version"
    assert caught.value.offset == len(raw) - FOOTER_SIZE
    assert "9" in caught.value.message


def test_not_an_sstable_and_truncated_files(tmp_path: Path) -> None:
    (tmp_path / "sstables").mkdir()
    (tmp_path / "sstables" / "000001.sst").write_bytes(b"hello")
    with pytest.raises(TableCorruptionError) as caught:
        open_table(tmp_path, 1)
    assert caught.value.kind == "footer"
    meta = write_table(tmp_path, 2, ENTRIES)
    path = tmp_path / "sstables" / "000002.sst"
    path.write_bytes(path.read_bytes()[: meta.size // 2])
    with pytest.raises(TableCorruptionError) as caught:
        open_table(tmp_path, 2)
    assert caught.value.kind == "footer"
    with pytest.raises(TableCorruptionError) as caught:
        open_table(tmp_path, 3)
    assert caught.value.kind == "missing-file"


def test_properties_record_what_the_table_holds(tmp_path: Path) -> None:
    meta = write_table(
        tmp_path,
        4,
        ENTRIES,
        level=2,
        min_lsn=5,
        max_lsn=90,
        lineage={"compaction": "c4", "inputs": [1, 2], "output": 0, "last": True},
    )
    reader = open_table(tmp_path, 4)
    props = reader.properties
    assert props["level"] == 2 and props["min_lsn"] == 5 and props["max_lsn"] == 90
    assert props["entries"] == 400 and props["lineage"]["inputs"] == [1, 2]
    assert reader.meta == meta
    assert json.loads(json.dumps(props)) == props
    assert (tmp_path / "sstables" / "000004.sst").read_bytes()[-8:] == MAGIC
