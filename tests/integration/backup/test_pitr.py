"""Point-in-time recovery reaches exactly the state at an LSN or a time, and refuses targets outside the window."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from backup_support import Model, assert_error, cli, export, write_rows

from engines import create_engine, open_engine
from engines.backup import RecoveryTargetError, attach_archiver, create_backup, iso_utc, restore_backup


def _history(backend: str, tmp_path: Path) -> tuple[Path, Path, Model, int, int]:
    """A full backup, then two batches of writes archived incrementally; returns the time between them."""
    source, repo = tmp_path / "data", tmp_path / "repo"
    model = Model()
    with create_engine(source, backend=backend, durability="async", wal_segment_bytes=64 * 1024) as engine:
        write_rows(engine, model, 0, 300, tag="base")
    create_backup(repo, data_dir=source)
    with open_engine(source, durability="async") as engine:
        attach_archiver(engine, repo)
        write_rows(engine, model, 300, 400, tag="first")
        first_end = engine.last_lsn
        time.sleep(0.02)
        between = time.time_ns()
        time.sleep(0.02)
        write_rows(engine, model, 700, 400, tag="second")
    incremental = create_backup(repo, data_dir=source, incremental=True)
    assert incremental.lsn_end == model.writes[-1][0]
    return source, repo, model, first_end, between


def test_pitr_to_every_kind_of_lsn_matches_the_model(backend: str, tmp_path: Path, capsys) -> None:
    _source, repo, model, first_end, _between = _history(backend, tmp_path)
    base_end = model.writes[299][0]
    last = model.writes[-1][0]
    for number, lsn in enumerate((base_end, base_end + 1, first_end, (first_end + last) // 2, last)):
        target = tmp_path / f"pitr{number}"
        result = cli(
            capsys, "backup", "restore", "--repo", repo, "--data-dir", target, "--until-lsn", str(lsn), "--json"
        )
        assert result.code == 0, result.err
        assert result.json()["lsn"] == lsn
        assert export(target) == model.state_at(lsn)
        with open_engine(target, mode="ro") as engine:
            assert engine.last_lsn == lsn


def test_pitr_to_a_time_between_two_batches_returns_exactly_the_first(backend: str, tmp_path: Path, capsys) -> None:
    _source, repo, model, first_end, between = _history(backend, tmp_path)
    target = tmp_path / "pitr"
    result = cli(
        capsys, "backup", "restore", "--repo", repo, "--data-dir", target, "--until", iso_utc(between), "--json"
    )
    assert result.code == 0, result.err
    payload = result.json()
    assert payload["lsn"] == first_end
    written_at = next(ns for lsn, ns, _entries in model.writes if lsn == first_end)
    assert iso_utc(written_at - 10**9) < payload["timestamp"] <= iso_utc(between)  # the reached record's time
    assert export(target) == model.state_at(first_end)


def test_restoring_the_incremental_backup_recovers_to_its_end(backend: str, tmp_path: Path) -> None:
    _source, repo, model, _first_end, _between = _history(backend, tmp_path)
    target = tmp_path / "latest"
    result = restore_backup(repo, target)  # latest: the incremental backup
    assert result.type == "pitr" and result.lsn == model.writes[-1][0]
    assert export(target) == model.state_at(result.lsn)


def test_targets_outside_the_window_exit_2_and_state_the_window(backend: str, tmp_path: Path, capsys) -> None:
    _source, repo, model, _first_end, _between = _history(backend, tmp_path)
    target = tmp_path / "never"
    too_late = cli(
        capsys, "backup", "restore", "--repo", repo, "--data-dir", target, "--until-lsn", str(model.writes[-1][0] + 1)
    )
    line = assert_error(too_late, 2, contains="recoverable window: LSN")
    assert f"..{model.writes[-1][0]}" in line
    future = cli(
        capsys, "backup", "restore", "--repo", repo, "--data-dir", target, "--until", iso_utc(time.time_ns() + 10**12)
    )
    assert_error(future, 2, contains="after the newest WAL")
    too_early = cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", target, "--until-lsn", "5")
    assert_error(too_early, 2, contains="before the oldest full backup")
    ancient = cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", target, "--until", "2001-01-01T00:00:00Z")
    assert_error(ancient, 2, contains="recoverable window")
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_bad_time_and_two_targets_are_usage_errors(tmp_path: Path, capsys) -> None:
    repo = tmp_path / "repo"
    result = cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", tmp_path / "x", "--until", "yesterday")
    assert result.code in (2, 3)
    both = cli(
        capsys,
        "backup",
        "restore",
        "--repo",
        repo,
        "--data-dir",
        tmp_path / "x",
        "--until",
        "2026-01-01",
        "--until-lsn",
        "3",
    )
    assert_error(both, 2)


def test_a_gap_in_the_archive_splits_the_window(backend: str, tmp_path: Path) -> None:
    source, repo, model = tmp_path / "data", tmp_path / "repo", Model()
    with create_engine(source, backend=backend, durability="async", wal_segment_bytes=64 * 1024) as engine:
        write_rows(engine, model, 0, 200, tag="a")
    create_backup(repo, data_dir=source)
    with open_engine(source, durability="async") as engine:
        attach_archiver(engine, repo)
        write_rows(engine, model, 200, 1500, tag="b")
    create_backup(repo, data_dir=source, incremental=True)
    segments = sorted((repo / "wal-archive").glob("*.wal"))
    middle = segments[len(segments) // 2]
    middle.unlink()
    with pytest.raises(RecoveryTargetError, match="recoverable window"):
        restore_backup(repo, tmp_path / "past-gap", until_lsn=model.writes[-1][0])
    reachable = int(middle.name[:20]) - 1
    result = restore_backup(repo, tmp_path / "before-gap", until_lsn=reachable)
    assert export(tmp_path / "before-gap") == model.state_at(reachable) and result.lsn == reachable
