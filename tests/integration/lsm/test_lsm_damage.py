"""Damaged data dirs: every block kind corrupted, bad manifests, missing and future tables.

Damage is detected and named (file, block offset); reads of a damaged range raise
CorruptionError and never return wrong data; the rest stays readable.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from lsm_kit import create_lsm, fill, flip, tables, value_of

from engines import open_engine
from engines.errors import CorruptionError, UnsupportedFormatError
from engines.lsm.engine import LsmEngine
from engines.lsm.sstable_format import FOOTER_SIZE
from engines.lsm.sstable_reader import open_table
from engines.lsm.verify import verify_data_dir

WIDE = {"memtable_bytes": 1 << 20, "block_bytes": 512, "compression": "zstd", "levels": 4}


def two_tables(path: Path) -> tuple[dict[bytes, bytes], Path, Path]:
    """A dir with an older table of a*-keys in L0 and a newer one of b*-keys, both flushed."""
    with create_lsm(path, WIDE) as engine:
        written = fill(engine, 300, prefix=b"a")
        engine.flush()
        written |= fill(engine, 300, prefix=b"b")
        engine.flush()
    first, second = tables(path)
    return written, first, second


def block_offsets(path: Path) -> dict[str, int]:
    data_dir = path.parent.parent
    reader = open_table(data_dir, int(path.stem))
    footer = reader.footer
    offsets = {
        "data": reader.offsets[3],
        "index": footer.index[0],
        "bloom": footer.bloom[0],
        "properties": footer.props[0],
        "footer": reader.size - FOOTER_SIZE,
    }
    reader.close()
    return offsets


@pytest.mark.parametrize("kind", ["data", "index", "bloom", "properties", "footer"])
def test_each_damaged_block_kind_is_found_and_never_read_as_data(tmp_path: Path, kind: str) -> None:
    data = tmp_path / "db"
    written, first, _second = two_tables(data)
    offset = block_offsets(first)[kind]
    flip(first, offset + 6)
    expected_kind = {"data": "checksum"}.get(kind, kind)
    with open_engine(data, mode="ro") as engine:
        report = engine.verify()
        assert not report.ok
        problem = report.problems[0]
        assert (problem.kind, problem.file, problem.offset) == (expected_kind, "sstables/" + first.name, offset)
        # The b-table is untouched: all of it reads.
        for key, value in written.items():
            if key.startswith(b"b"):
                assert engine.get(key) == value
        assert list(engine.scan(start=b"b")) == sorted((k, v) for k, v in written.items() if k.startswith(b"b"))
        a_keys = sorted(k for k in written if k.startswith(b"a"))
        if kind == "bloom":
            # The filter is only a shortcut: the table reads correctly without it.
            assert [engine.get(key) for key in a_keys] == [written[key] for key in a_keys]
        else:
            with pytest.raises(CorruptionError):
                for key in a_keys:
                    assert engine.get(key) == written[key]  # never a wrong value: it raises
            with pytest.raises(CorruptionError):
                list(engine.scan())
    assert verify_data_dir(data).problems[0].kind == expected_kind  # the same without opening the engine


def test_manifest_that_is_not_json_refuses_to_open_and_names_the_file(tmp_path: Path) -> None:
    data = tmp_path / "db"
    two_tables(data)
    (data / "manifest.json").write_text('{"format": "drconsole-lsm-manifest", truncated')
    for mode in ("rw", "ro"):
        with pytest.raises(CorruptionError) as caught:
            open_engine(data, mode=mode)
        assert caught.value.file == "manifest.json" and "not JSON" in caught.value.message
        assert caught.value.hint and "repair" in caught.value.hint
    report = verify_data_dir(data)
    assert report.problems[0].kind == "manifest" and report.problems[0].file == "manifest.json"
    assert report.checked["unlisted_sstables"] == 2


def test_manifest_naming_a_missing_file(tmp_path: Path) -> None:
    data = tmp_path / "db"
    written, first, _second = two_tables(data)
    first.rename(tmp_path / "elsewhere.sst")
    with open_engine(data) as engine:
        report = engine.verify()
        assert [(p.kind, p.file) for p in report.problems] == [("missing-file", f"sstables/{first.name}")]
        assert engine.get(b"b000010") == written[b"b000010"]
        with pytest.raises(CorruptionError, match="a000000"):
            engine.get(b"a000010")
        with pytest.raises(CorruptionError):
            engine.compact()
        assert engine.stats().details["damaged_tables"] == [f"sstables/{first.name}"]


def test_an_sstable_from_a_future_format_version(tmp_path: Path) -> None:
    data = tmp_path / "db"
    written, first, _second = two_tables(data)
    raw = bytearray(first.read_bytes())
    struct.pack_into("<I", raw, len(raw) - 12, 2)
    first.write_bytes(bytes(raw))
    with open_engine(data, mode="ro") as engine:
        report = engine.verify()
        assert [(p.kind, p.file, p.offset) for p in report.problems] == [
            ("format-version", f"sstables/{first.name}", len(raw) - FOOTER_SIZE)
        ]
        with pytest.raises(CorruptionError, match="format version 2"):
            engine.get(b"a000001")
        assert engine.get(b"b000001") == written[b"b000001"]


def test_a_manifest_from_the_future_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "db"
    two_tables(data)
    body = json.loads((data / "manifest.json").read_text())
    body["format_version"] = 3
    (data / "manifest.json").write_text(json.dumps(body))
    with pytest.raises(UnsupportedFormatError):
        open_engine(data, mode="ro")


def test_orphan_tables_are_reported_not_touched(tmp_path: Path) -> None:
    data = tmp_path / "db"
    _written, first, _second = two_tables(data)
    stray = data / "sstables" / "000000.sst"
    stray.write_bytes(first.read_bytes())
    with open_engine(data) as engine:
        report = engine.verify()
        assert [(p.kind, p.file) for p in report.problems] == [("orphan-file", "sstables/000000.sst")]
    assert stray.exists()  # not ours to delete: it may be someone's data


def test_leftovers_of_interrupted_work_are_cleaned_on_open(tmp_path: Path) -> None:
    data = tmp_path / "db"
    written, first, _second = two_tables(data)
    manifest = json.loads((data / "manifest.json").read_text())
    uncommitted = data / "sstables" / f"{manifest['next_file_number']:06d}.sst"
    uncommitted.write_bytes(first.read_bytes())  # a table written but never named in a manifest
    partial = data / "sstables" / "000099.sst.tmp"
    partial.write_bytes(b"half a table")
    assert verify_data_dir(data).ok  # interrupted work is expected after a crash, not damage
    with open_engine(data) as engine:
        assert not uncommitted.exists() and not partial.exists()
        assert engine.verify().ok
        assert dict(engine.scan()) == written


def test_compaction_refuses_damaged_input_and_keeps_serving(tmp_path: Path) -> None:
    data = tmp_path / "db"
    written, first, _second = two_tables(data)
    flip(first, block_offsets(first)["data"] + 2)
    with open_engine(data) as engine:
        assert isinstance(engine, LsmEngine)
        with pytest.raises(CorruptionError) as caught:
            engine.compact()
        assert caught.value.file == f"sstables/{first.name}"
        assert len(tables(data)) == 2  # nothing half-written left, nothing removed
        assert engine.get(b"b000001") == written[b"b000001"]
        engine.put(b"c", value_of(1))
        engine.flush()
        assert engine.get(b"c") == value_of(1)
