"""Backup formats: new archives hold the data dir only (format 2); format 1 archives, which end with
a SHA256SUMS of their files, still verify and restore with every file checked; a format this
drconsole does not know is refused with nothing changed.

Format 1 backups are made the way drconsole made them before 2026-12-07: a real backup re-packed
with the SHA256SUMS member and the metadata's format 1 (``backup_support.recraft``).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard
from backup_support import assert_error, cli, export, recraft, store_archive, tree_hash

from engines import create_engine
from engines.backup import create_backup
from engines.backup.metadata import FORMAT_VERSION

needs_tools = pytest.mark.skipif(not all(shutil.which(t) for t in ("tar", "zstd")), reason="tar and zstd are needed")


def _backed_up(tmp_path: Path, backend: str) -> tuple[Path, Path, Path]:
    """A data dir of 300 keys, its repository and the folder of its one full backup."""
    data, repo = tmp_path / "data", tmp_path / "repo"
    with create_engine(data, backend=backend, durability="async") as engine:
        engine.write_batch([(f"k{i:04d}".encode(), f"value {i}".encode() * 20) for i in range(300)])
    return data, repo, create_backup(repo, data_dir=data).path


def _metadata(folder: Path) -> dict[str, object]:
    return json.loads((folder / f"{folder.name}.metadata.json").read_text())


@needs_tools
def test_a_new_backup_is_format_2_and_its_archive_holds_the_data_dir_only(tmp_path: Path) -> None:
    _data, _repo, folder = _backed_up(tmp_path, "lsm")
    assert _metadata(folder)["format_version"] == FORMAT_VERSION == 2
    listed = subprocess.run(
        ["tar", "--zstd", "-tf", str(folder / f"{folder.name}.tar.zst")], check=True, capture_output=True, text=True
    ).stdout.split()
    assert listed and all(name == "data/" or name.startswith("data/") for name in listed), listed


def test_a_format_1_backup_verifies_and_restores(
    backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, repo, folder = _backed_up(tmp_path, backend)
    recraft(folder, format_version=1)
    verified = cli(capsys, "backup", "verify", "--repo", repo, "--json")
    assert verified.code == 0, verified.out + verified.err
    assert _metadata(folder)["restorability"] == "VERIFIED"
    target = tmp_path / "restored"
    restored = cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", target)
    assert restored.code == 0, restored.err
    assert export(target) == export(data)
    assert not (target / "SHA256SUMS").exists() and not (target.parent / "SHA256SUMS").exists()


def test_a_file_changed_in_a_format_1_backup_is_named_by_verify_and_refused_by_restore(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The archive and the SHA256SUMS beside it redone, as a rewrite would: only the sums inside catch it."""
    _data, repo, folder = _backed_up(tmp_path, "cow")
    recraft(folder, format_version=1)
    tar = bytearray(zstandard.ZstdDecompressor().decompress((folder / f"{folder.name}.tar.zst").read_bytes()))
    with tarfile.open(fileobj=io.BytesIO(bytes(tar))) as reader:
        victim = reader.getmember("data/data.cow")
    tar[victim.offset_data + 100] ^= 0xFF
    store_archive(folder, bytes(tar))
    verified = cli(capsys, "backup", "verify", "--repo", repo, "--json")
    assert verified.code == 1
    problems = json.loads(verified.out)["backups"][0]["problems"]
    assert [p["file"].rsplit(":", 1)[1] for p in problems] == ["data/data.cow"], problems
    assert "checksum mismatch" in problems[0]["detail"]
    assert _metadata(folder)["restorability"] == "CORRUPT"
    target = tmp_path / "restored"
    assert_error(cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", target), 1, contains="data.cow")
    assert not target.exists()


def test_a_sums_member_in_a_format_2_archive_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The metadata and the archive disagree on the format: verify says so, and restore refuses it."""
    _data, repo, folder = _backed_up(tmp_path, "rocksdb")
    recraft(folder, format_version=1)
    meta = _metadata(folder)
    meta["format_version"] = 2
    (folder / f"{folder.name}.metadata.json").write_text(json.dumps(meta))
    verified = cli(capsys, "backup", "verify", "--repo", repo, "--json")
    assert verified.code == 1
    problems = json.loads(verified.out)["backups"][0]["problems"]
    assert [(p["file"].rsplit(":", 1)[1], p["detail"]) for p in problems] == [("SHA256SUMS", "unexpected member")]
    target = tmp_path / "restored"
    assert_error(cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", target), 1, contains="unexpected")
    assert not target.exists()


@pytest.mark.parametrize("command", ["verify", "restore"])
def test_a_newer_format_is_refused_with_nothing_changed(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _data, repo, folder = _backed_up(tmp_path, "lsm")
    meta = _metadata(folder)
    meta["format_version"] = FORMAT_VERSION + 1
    (folder / f"{folder.name}.metadata.json").write_text(json.dumps(meta))
    before = tree_hash(folder)
    target = tmp_path / "restored"
    if command == "verify":
        result = cli(capsys, "backup", "verify", "--repo", repo, "--json")
        assert result.code == 1
        (problem,) = json.loads(result.out)["backups"][0]["problems"]
        assert problem["kind"] == "format" and "newer drconsole" in problem["detail"], problem
    else:
        result = cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", target)
        assert_error(result, 1, contains=f"backup format {FORMAT_VERSION + 1} by a newer drconsole")
        assert not target.exists()
    # Not marked CORRUPT: it is sound, only newer. (Restore writes its log under logs/, not here.)
    assert tree_hash(folder) == before
