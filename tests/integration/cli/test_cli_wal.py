"""``drconsole wal validate|truncate`` on real segments with real damage."""

from __future__ import annotations

import fcntl
import os
import random
from pathlib import Path

import pytest
from cli_support import assert_error, cli, make_data_dir, tree_hash, wal_segments, write_without_close

VALIDATE_FIELDS = {"ok", "records", "first_lsn", "last_lsn", "corruption"}


@pytest.fixture
def logged(backend: str, tmp_path: Path) -> Path:
    """A data dir whose WAL holds two segments: 1 record, then 3 (the last session never closed)."""
    data = make_data_dir(tmp_path / "data", backend, rows=20)
    write_without_close(data, {"a": "1", "b": "2", "c": "3"})
    assert len(wal_segments(data)) >= 2
    return data


def test_validate_a_clean_log(logged: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = tree_hash(logged)
    result = cli(capsys, "wal", "validate", "--data-dir", logged, "--json")
    report = result.json()
    assert result.code == 0 and VALIDATE_FIELDS <= set(report)
    assert report["ok"] is True and report["corruption"] is None and report["records"] >= 3
    text = cli(capsys, "wal", "validate", "--data-dir", logged)
    assert text.code == 0 and text.out.startswith("ok:")
    nothing = cli(capsys, "wal", "truncate", "--data-dir", logged, "--yes", "--json")
    assert nothing.code == 0 and nothing.json()["truncated"] is False
    assert tree_hash(logged) == before  # not even an empty quarantine folder


@pytest.mark.parametrize("which", [0, -1], ids=["first-segment", "last-segment"])
def test_garbage_in_place_of_a_segment(which: int, logged: Path, capsys: pytest.CaptureFixture[str]) -> None:
    segment = wal_segments(logged)[which]
    segment.write_bytes(random.Random(7).randbytes(segment.stat().st_size))
    before = tree_hash(logged)

    result = cli(capsys, "wal", "validate", "--data-dir", logged, "--json")
    assert result.code == 1
    corruption = result.json()["corruption"]
    assert corruption["segment"] == segment.name and corruption["offset"] == 0 and corruption["reason"]
    verified = cli(capsys, "engine", "verify", "--data-dir", logged, "--json")
    assert verified.code == 1 and verified.json()["ok"] is False
    assert any(problem["file"] and segment.name in problem["file"] for problem in verified.json()["problems"])
    assert tree_hash(logged) == before

    # Reading commands neither crash nor repair anything behind the responder's back.
    for argv in (["engine", "get", "--data-dir", logged, "key001"], ["engine", "stats", "--data-dir", logged]):
        read = cli(capsys, *argv)
        assert read.code in (0, 1) and "Traceback" not in read.err
        if read.code:
            assert_error(read, 1)
    assert tree_hash(logged) == before

    refused = cli(capsys, "wal", "truncate", "--data-dir", logged, "--json")
    assert_error(refused, 4, contains="--yes")
    assert refused.json()["exit_code"] == 4
    assert tree_hash(logged) == before

    cut = cli(capsys, "wal", "truncate", "--data-dir", logged, "--yes", "--json")
    assert cut.code == 0, cut.err
    quarantine = Path(cut.json()["quarantine"])
    assert quarantine.is_dir() and quarantine.parent == logged / ".quarantine"
    assert (quarantine / segment.name).read_bytes() == random.Random(7).randbytes(
        len((quarantine / segment.name).read_bytes())
    )
    assert cli(capsys, "wal", "validate", "--data-dir", logged).code == 0


def test_a_truncated_segment(logged: Path, capsys: pytest.CaptureFixture[str]) -> None:
    segment = wal_segments(logged)[-1]
    original = segment.read_bytes()
    os.truncate(segment, len(original) - 5)

    result = cli(capsys, "wal", "validate", "--data-dir", logged, "--json")
    assert result.code == 1
    corruption = result.json()["corruption"]
    assert corruption == {"segment": segment.name, "offset": corruption["offset"], "reason": "truncated record"}
    assert 0 < corruption["offset"] < len(original) - 5
    human = cli(capsys, "wal", "validate", "--data-dir", logged)
    assert human.code == 1 and "truncated record" in human.out and segment.name in human.out

    before = tree_hash(logged)
    assert_error(cli(capsys, "wal", "truncate", "--data-dir", logged), 4)
    assert tree_hash(logged) == before

    cut = cli(capsys, "wal", "truncate", "--data-dir", logged, "--yes", "--json")
    assert cut.code == 0, cut.err
    payload = cut.json()
    assert payload["truncated"] is True and payload["corruption"] == corruption
    tails = list(Path(payload["quarantine"]).iterdir())
    assert [tail.read_bytes() for tail in tails] == [original[corruption["offset"] : len(original) - 5]]
    assert segment.read_bytes() == original[: corruption["offset"]]
    after = cli(capsys, "wal", "validate", "--data-dir", logged, "--json")
    assert after.code == 0 and after.json()["records"] == payload["kept"]["records"]
    # The data dir opens and serves what the kept log and the store hold.
    assert cli(capsys, "engine", "get", "--data-dir", logged, "a").out == "1\n"
    assert cli(capsys, "engine", "put", "--data-dir", logged, "after", "cut").code == 0
    assert cli(capsys, "engine", "get", "--data-dir", logged, "after").out == "cut\n"


def test_truncate_refuses_a_log_in_use(logged: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A log in use by an engine (its lock held) is not cut under it."""
    segment = wal_segments(logged)[-1]
    os.truncate(segment, segment.stat().st_size - 3)
    before = tree_hash(logged)
    holder = os.open(logged / "drconsole.lock", os.O_RDWR)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running engine holds
        assert_error(cli(capsys, "wal", "truncate", "--data-dir", logged, "--yes"), 3, contains="in use")
    finally:
        os.close(holder)
    assert tree_hash(logged) == before
