"""Engine options: checked when built, saved in the marker, and a bad one named on one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.cli.main import main
from engines import create_engine, open_engine
from engines.errors import InvalidArgumentError, UnsupportedFormatError
from engines.marker import MARKER_NAME
from engines.options import EngineOptions
from engines.reports import EngineStats
from playbooks.probes import PROBES, ProbeContext


@pytest.mark.parametrize(
    ("raw", "field", "says"),
    [
        ({"cache_bytes": 5.5}, "cache_bytes", "whole number"),
        ({"cache_bytes": None}, "cache_bytes", "whole number"),
        ({"cache_bytes": True}, "cache_bytes", "whole number"),
        ({"async_interval_ms": 0}, "async_interval_ms", ">= 1"),
        ({"async_interval_ms": 10_001}, "async_interval_ms", "<= 10000"),
        ({"wal_segment_bytes": 4096}, "wal_segment_bytes", ">= 65536"),
        ({"durability": "fast"}, "durability", "async, sync"),
        ({"wal_recovery": "hope"}, "wal_recovery", "point_in_time"),
        ({"low_memory": 2}, "low_memory", "true or false"),
        ({"backend": []}, "backend", "dictionary"),
        ({"cache_size": 1}, "cache_size", "not an engine option"),
    ],
)
def test_a_bad_option_is_refused_with_its_name_on_one_line(raw: dict[str, object], field: str, says: str) -> None:
    with pytest.raises(ValueError) as caught:
        EngineOptions.model_validate(raw)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{field}:") and says in message, message


def test_whole_numbers_as_text_or_floats_and_boolean_words_are_taken() -> None:
    options = EngineOptions.model_validate(
        {"cache_bytes": "1048576", "wal_keep_segments": 3.0, "low_memory": "yes", "durability": "async"}
    )
    assert (options.cache_bytes, options.wal_keep_segments, options.low_memory) == (1 << 20, 3, True)
    assert EngineOptions.model_validate({"low_memory": 0}).low_memory is False
    assert EngineOptions.model_validate(options) is options


def test_the_options_round_trip_through_the_marker(tmp_path: Path) -> None:
    engine = create_engine(tmp_path / "d", backend="lsm", durability="async", cache_bytes=8 << 20, wal_keep_segments=5)
    engine.close()
    saved = json.loads((tmp_path / "d" / MARKER_NAME).read_text())
    assert "durability" not in saved["options"] and saved["durability"] == "async"
    assert saved["options"]["cache_bytes"] == 8 << 20 and saved["options"]["wal_keep_segments"] == 5
    engine = open_engine(tmp_path / "d")
    try:
        assert engine.options == EngineOptions(durability="async", cache_bytes=8 << 20, wal_keep_segments=5)
        stats = engine.stats()
        assert isinstance(stats, EngineStats)
        dumped = stats.model_dump(mode="json")
        assert json.loads(stats.model_dump_json()) == dumped and dumped["backend"] == "lsm"
    finally:
        engine.close()


def test_create_engine_and_the_config_probe_name_a_bad_option(tmp_path: Path) -> None:
    """Before, both quoted the last line of pydantic's message: a link to its docs, not the option."""
    with pytest.raises(InvalidArgumentError, match=r"bad engine option: cache_bytes: should be >= 0, not -1"):
        create_engine(tmp_path / "new", backend="cow", cache_bytes=-1)
    assert not (tmp_path / "new").exists()

    create_engine(tmp_path / "d", backend="cow").close()
    marker_path = tmp_path / "d" / MARKER_NAME
    marker = json.loads(marker_path.read_text())
    marker["options"]["wal_segment_bytes"] = "big"
    marker_path.write_text(json.dumps(marker))
    answer = PROBES["config.broken"](ProbeContext(data_dir=tmp_path / "d"))
    assert answer.answer is True
    assert answer.evidence.endswith("holds bad engine options: wal_segment_bytes: should be a whole number, not 'big'")


def test_a_bad_option_in_the_marker_is_the_data_dirs_problem_not_a_bug(tmp_path: Path, capsys) -> None:
    """It was an "unexpected ValueError ... this is a bug in drconsole" with exit 1, from every opener."""
    create_engine(tmp_path / "d", backend="lsm").close()
    marker_path = tmp_path / "d" / MARKER_NAME
    marker = json.loads(marker_path.read_text())
    marker["options"]["cache_bytes"] = -5
    marker_path.write_text(json.dumps(marker))
    before = marker_path.read_bytes()
    with pytest.raises(UnsupportedFormatError, match="holds a bad engine option: cache_bytes: should be >= 0"):
        open_engine(tmp_path / "d", mode="ro")
    with pytest.raises(UnsupportedFormatError, match="config-recovery"):
        open_engine(tmp_path / "d", durability="async")
    capsys.readouterr()
    assert main(["engine", "stats", "--data-dir", str(tmp_path / "d")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cache_bytes" in err and "bug" not in err, err
    assert main(["backup", "create", "--data-dir", str(tmp_path / "d"), "--repo", str(tmp_path / "r")]) == 3
    assert marker_path.read_bytes() == before and not (tmp_path / "r").exists()
