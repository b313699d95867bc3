"""``backup verify`` finds every damaged byte, missing WAL and unreadable metadata, without restoring."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from backup_support import Model, assert_error, cli, corrupt_byte, write_rows

from engines import create_engine, open_engine
from engines.backup import attach_archiver, create_backup, verify_repository


@pytest.fixture(scope="module")
def history_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Model]:
    """A rocksdb data dir's full backup plus archived WAL of many small segments (one backend
    suffices: verification reads the repository, not the engine). Built once per module."""
    root = tmp_path_factory.mktemp("history")
    source, repo, model = root / "data", root / "repo", Model()
    with create_engine(source, backend="rocksdb", durability="async", wal_segment_bytes=64 * 1024) as engine:
        write_rows(engine, model, 0, 300, tag="a")
    full = create_backup(repo, data_dir=source)
    with open_engine(source, durability="async") as engine:
        attach_archiver(engine, repo)
        write_rows(engine, model, 300, 4000, tag="b")
    create_backup(repo, data_dir=source, incremental=True)
    assert full.backup_id is not None
    return repo, full.backup_id, model


@pytest.fixture
def repo_with_history(history_template: tuple[Path, str, Model], tmp_path: Path) -> tuple[Path, str, Model]:
    """A private copy of the template repository, for a test to damage."""
    template, backup_id, model = history_template
    repo = tmp_path / "repo"
    shutil.copytree(template, repo)
    return repo, backup_id, model


def test_a_sound_repository_verifies_and_is_marked_verified(repo_with_history, capsys) -> None:
    repo, backup_id, _model = repo_with_history
    result = cli(capsys, "backup", "verify", "--repo", repo, "--json")
    assert result.code == 0, result.out
    payload = result.json()
    assert payload["ok"] and payload["wal"]["missing"] == [] and len(payload["backups"]) == 2
    listed = cli(capsys, "backup", "list", "--repo", repo, "--json").json()
    assert all(item["verified"] for item in listed["backups"])
    assert set(listed["backups"][0]) >= {
        "backup_id",
        "type",
        "timestamp",
        "size_bytes",
        "lsn_start",
        "lsn_end",
        "verified",
    }
    text = cli(capsys, "backup", "verify", "--repo", repo, backup_id)
    assert text.code == 0 and text.out.startswith("ok: 1 backup(s) verified")


@pytest.mark.parametrize("where", ["start", "header", "middle", "end"])
def test_any_corrupt_byte_of_an_archive_fails_verify_naming_the_file(repo_with_history, capsys, where: str) -> None:
    repo, backup_id, _model = repo_with_history
    archive = next((repo).glob(f"*/{backup_id}/{backup_id}.tar.zst"))
    size = archive.stat().st_size
    corrupt_byte(archive, {"start": 0, "header": 5, "middle": size // 2, "end": -1}[where])
    result = cli(capsys, "backup", "verify", "--repo", repo, backup_id, "--json")
    assert result.code == 1
    payload = result.json()
    assert not payload["ok"]
    assert any(
        str(archive) in (problem["file"] or "") and "checksum mismatch" in problem["detail"]
        for problem in payload["problems"]
    )
    text = cli(capsys, "backup", "verify", "--repo", repo)
    assert text.code == 1 and str(archive) in text.out and "Traceback" not in text.out + text.err
    metadata = json.loads((archive.parent / f"{backup_id}.metadata.json").read_text())
    assert metadata["verified"] is False and metadata["restorability"] == "CORRUPT"


def test_quick_verify_checks_sizes_and_reads_no_data(repo_with_history, capsys) -> None:
    repo, backup_id, _model = repo_with_history
    archive = next(repo.glob(f"*/{backup_id}/{backup_id}.tar.zst"))
    corrupt_byte(archive, 100)
    quick = cli(capsys, "backup", "verify", "--repo", repo, "--quick", "--json")
    assert quick.code == 0 and quick.json()["bytes_read"] == 0  # same size: quick cannot see it
    with open(archive, "r+b") as handle:
        handle.truncate(archive.stat().st_size - 10)
    truncated = cli(capsys, "backup", "verify", "--repo", repo, "--quick", "--json")
    assert truncated.code == 1
    assert any(p["kind"] == "size" and p["file"] == str(archive) for p in truncated.json()["problems"])


def test_a_deleted_middle_segment_is_reported_as_missing_lsns(repo_with_history, capsys) -> None:
    repo, _backup_id, _model = repo_with_history
    segments = sorted((repo / "wal-archive").glob("*.wal"))
    assert len(segments) >= 4
    index = len(segments) // 2
    first_missing = int(segments[index].name[:20])
    last_missing = int(segments[index + 1].name[:20]) - 1
    segments[index].unlink()
    result = cli(capsys, "backup", "verify", "--repo", repo, "--json")
    assert result.code == 1
    payload = result.json()
    assert payload["wal"]["missing"] == [{"first_lsn": first_missing, "last_lsn": last_missing}]
    assert any(p["kind"] == "missing-segment" and p["file"].endswith(segments[index].name) for p in payload["problems"])
    text = cli(capsys, "backup", "verify", "--repo", repo)
    assert f"missing WAL: LSN {first_missing}..{last_missing}" in text.out
    # Verifying the incremental backup (what restoring it needs) finds it too.
    incremental = [b["backup_id"] for b in payload["backups"] if b["type"] == "incremental"][0]
    assert cli(capsys, "backup", "verify", "--repo", repo, incremental).code == 1


def test_a_corrupt_archived_segment_is_named(repo_with_history) -> None:
    repo, _backup_id, _model = repo_with_history
    segment = sorted((repo / "wal-archive").glob("*.wal"))[1]
    corrupt_byte(segment, 40)
    result = verify_repository(str(repo))
    assert not result.ok
    assert any(p.file == str(segment) and "checksum mismatch" in p.detail for p in result.problems)


def test_metadata_that_does_not_parse_is_a_problem_not_a_crash(repo_with_history, capsys) -> None:
    repo, backup_id, _model = repo_with_history
    metadata = next(repo.glob(f"*/{backup_id}/{backup_id}.metadata.json"))
    metadata.write_text("{ not json")
    result = cli(capsys, "backup", "verify", "--repo", repo, "--json")
    assert result.code == 1
    assert any(p["kind"] == "metadata" and p["file"] == str(metadata) for p in result.json()["problems"])
    listed = cli(capsys, "backup", "list", "--repo", repo)
    assert listed.code == 0 and "unreadable" in listed.out
    restore = cli(capsys, "backup", "restore", "--repo", repo, backup_id, "--data-dir", repo.parent / "r")
    assert_error(restore, 1, contains=str(metadata))
    assert not (repo.parent / "r").exists()


def test_verify_of_a_missing_repository_exits_3(tmp_path: Path, capsys) -> None:
    assert_error(cli(capsys, "backup", "verify", "--repo", tmp_path / "nope"), 3, contains="does not exist")
    (tmp_path / "file").write_text("x")
    assert_error(cli(capsys, "backup", "list", "--repo", tmp_path / "file"), 3)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    assert_error(
        cli(capsys, "backup", "list", "--repo", tmp_path / "other"), 3, contains="not a drconsole backup repository"
    )
    assert_error(cli(capsys, "backup", "create", "--repo", tmp_path / "other", "--data-dir", tmp_path / "d"), 3)
    assert_error(cli(capsys, "backup", "verify", "--repo", tmp_path / "nope", "--json"), 3)
