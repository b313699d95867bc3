"""manifest.json (atomic, checksummed, validated) and the backend options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engines.errors import InvalidArgumentError, UnsupportedFormatError
from engines.lsm.manifest import Edit, Manifest, ManifestError, load_manifest, save_manifest
from engines.lsm.settings import settings_from_options
from engines.lsm.table_meta import TableMeta
from engines.options import EngineOptions


def meta(number: int, level: int, low: bytes, high: bytes) -> TableMeta:
    return TableMeta(
        number=number,
        level=level,
        size=100,
        entries=3,
        tombstones=1,
        min_key=low,
        max_key=high,
        min_lsn=number,
        max_lsn=number + 5,
        durable_lsn=number + 5,
    )


def sample() -> Manifest:
    return Manifest(
        levels=((meta(4, 0, b"a", b"z"),), (meta(2, 1, b"a", b"f"), meta(3, 1, b"g", b"k")), ()),
        durable_lsn=9,
        next_file_number=5,
        generation=3,
        last_edit=Edit(reason="compaction", added=(2, 3), removed=(meta(1, 0, b"a", b"k"),), durable_lsn_before=9),
        retired=(0,),
        pending=(7,),
    )


def test_round_trip(tmp_path: Path) -> None:
    save_manifest(tmp_path, sample())
    loaded = load_manifest(tmp_path)
    assert loaded.levels == sample().levels
    assert (loaded.durable_lsn, loaded.next_file_number, loaded.retired, loaded.pending) == (9, 5, (0,), (7,))
    assert loaded.last_edit == sample().last_edit
    assert not list(tmp_path.glob(".*tmp*"))  # the temp file was renamed into place


@pytest.mark.parametrize("damage", ["not-json", "checksum", "overlap", "wrong-level", "number", "missing-field"])
def test_damaged_manifests_are_refused_with_the_file_named(tmp_path: Path, damage: str) -> None:
    save_manifest(tmp_path, sample())
    path = tmp_path / "manifest.json"
    body = json.loads(path.read_text())
    if damage == "not-json":
        path.write_text("{ this is not json")
    else:
        if damage == "checksum":
            body["durable_lsn"] = 10
        elif damage == "overlap":
            body["levels"][1][1]["min_key"] = b"c".hex()
        elif damage == "wrong-level":
            body["levels"][1][0]["level"] = 2
        elif damage == "number":
            body["levels"][0][0]["number"] = 99
            body["levels"][0][0]["file"] = "000099.sst"
        elif damage == "missing-field":
            del body["levels"][0][0]["max_key"]
        if damage != "checksum":
            from engines.lsm.manifest import _checksum

            body.pop("checksum")
            body["checksum"] = _checksum(body)
        path.write_text(json.dumps(body))
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path)
    assert caught.value.file == "manifest.json"
    assert caught.value.hint and "repair" in caught.value.hint


def test_manifest_from_the_future_and_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="missing"):
        load_manifest(tmp_path)
    save_manifest(tmp_path, sample())
    body = json.loads((tmp_path / "manifest.json").read_text())
    body["format_version"] = 7
    (tmp_path / "manifest.json").write_text(json.dumps(body))
    with pytest.raises(UnsupportedFormatError, match="7"):
        load_manifest(tmp_path)


def test_settings_defaults_profile_and_validation() -> None:
    default = settings_from_options(EngineOptions())
    assert (default.memtable_bytes, default.levels, default.level_multiplier, default.l0_trigger) == (
        64 << 20,
        7,
        10,
        4,
    )
    low = settings_from_options(EngineOptions(low_memory=True, cache_bytes=8 << 20))
    assert (low.memtable_bytes, low.levels, low.level_multiplier, low.l0_trigger) == (16 << 20, 5, 8, 2)
    assert low.cache_bytes == 8 << 20
    tuned = settings_from_options(EngineOptions(low_memory=True, backend={"l0_trigger": 3, "compression": "none"}))
    assert (tuned.l0_trigger, tuned.compression, tuned.levels) == (3, "none", 5)
    assert tuned.level_target(1) == tuned.memtable_bytes * 3 and tuned.level_target(2) == tuned.level_target(1) * 8
    for bad in (
        {"levels": 1},
        {"compression": "lz4"},
        {"memtable_bytes": "big"},
        {"no_such_option": 1},
        {"l0_trigger": True},
    ):
        with pytest.raises(InvalidArgumentError):
            settings_from_options(EngineOptions(backend=bad))
