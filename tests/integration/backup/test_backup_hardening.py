"""Issue 18, items 2, 3 and the backup part of 8: crafted and damaged backups, restores aimed wrong.

Each test first builds what the attacker or the unlucky operator had: a real backup re-packed with
``tar`` semantics changed (setuid bits, a member twice, a 300-character name) and every checksum
made to match again (SHA256SUMS beside it, the metadata), metadata with absurd
numbers, a ``--replace`` aimed at a parent directory, another node's data dir or ``/``.
"""

from __future__ import annotations

import json
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import backup_support
import pytest
from backup_support import Members, assert_error, cli, export, tree_hash

from engines import create_engine
from engines.backup import create_backup


@pytest.fixture
def backed_up(tmp_path: Path) -> tuple[Path, Path]:
    """A data dir (node "orders", lsm, 50 keys) and a repository with one full backup of it."""
    data = tmp_path / "orders"
    with create_engine(data, backend="lsm") as engine:
        engine.write_batch([(f"k{i:03d}".encode(), f"v{i}".encode()) for i in range(50)])
    create_backup(tmp_path / "repo", data_dir=data)
    return data, tmp_path / "repo"


def _backup_dir(repo: Path) -> Path:
    (found,) = [path for path in repo.glob("*/backup_*") if path.is_dir()]
    return found


def recraft(repo: Path, change: Callable[[Members], Members]) -> None:
    """Re-pack the backup's archive through ``change`` and make every checksum agree with it again."""
    backup_support.recraft(_backup_dir(repo), change)


def _edit_metadata(repo: Path, **fields: object) -> Path:
    folder = _backup_dir(repo)
    path = folder / f"{folder.name}.metadata.json"
    meta = json.loads(path.read_text())
    meta.update(fields)
    path.write_text(json.dumps(meta))
    return path


# ------------------------------------------------------------------------------ item 2: file modes
def test_restore_drops_setuid_setgid_and_world_writable_bits(
    backed_up: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, repo = backed_up

    def dangerous(members: Members) -> Members:
        for info, _ in members:
            if info.isfile():
                info.mode = 0o6777  # -rwsrwsrwx, as the crafted backup
        return members

    recraft(repo, dangerous)
    assert cli(capsys, "backup", "verify", "--repo", repo).code == 0  # a well-formed archive: only the bits are bad
    target = tmp_path / "restored"
    result = cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", target)
    assert result.code == 0, result.err
    modes = {
        path.relative_to(target): stat.S_IMODE(path.stat().st_mode) for path in target.rglob("*") if path.is_file()
    }
    assert modes and set(modes.values()) == {0o755}, modes  # had execute bits: 0755, never s, never o+w
    assert export(target) == export(data)


def test_restored_files_without_execute_bits_are_0644(
    backed_up: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _data, repo = backed_up

    def world_writable(members: Members) -> Members:
        for info, _ in members:
            if info.isfile():
                info.mode = 0o1666
        return members

    recraft(repo, world_writable)
    target = tmp_path / "restored"
    assert cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", target).code == 0
    assert {stat.S_IMODE(path.stat().st_mode) for path in target.rglob("*") if path.is_file()} == {0o644}


# ------------------------------------------------------------------- item 8: damaged tar members
@pytest.mark.parametrize("damage", ["duplicate", "long-name"])
def test_a_duplicate_or_overlong_member_is_a_damaged_backup(
    damage: str, backed_up: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, repo = backed_up

    def twice(members: Members) -> Members:
        info, content = next((info, content) for info, content in members if info.isfile())
        copy = tarfile.TarInfo(info.name)
        copy.size, copy.mode = len(content), 0o644
        return [*members, (copy, content)]

    def long_name(members: Members) -> Members:
        info = tarfile.TarInfo("data/" + "x" * 300)
        info.size = 4
        return [*members, (info, b"evil")]

    recraft(repo, twice if damage == "duplicate" else long_name)
    # the issue: exit 3 "File exists" / "File name too long (check the --data-dir path)"
    target = tmp_path / "restored"
    line = assert_error(cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", target), 1, contains="damaged")
    assert ("twice" if damage == "duplicate" else "longer than a file name") in line
    assert "--data-dir" not in line and "backup verify" in line or "older backup" in line
    assert not target.exists() and not [path for path in tmp_path.iterdir() if ".restore-" in path.name]
    assert cli(capsys, "backup", "verify", "--repo", repo).code == 1
    before = tree_hash(data)
    assert_error(cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", data, "--replace"), 1)
    assert tree_hash(data) == before


# ----------------------------------------------------------------------- item 8: damaged metadata
def test_unreadable_metadata_names_the_damaged_file(
    backed_up: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _data, repo = backed_up
    folder = _backup_dir(repo)
    metadata = folder / f"{folder.name}.metadata.json"
    metadata.write_text("{ half a file")
    line = assert_error(cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", tmp_path / "new"), 1)
    assert str(metadata) in line and "holds no backup" not in line
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timestamp_ns", 10**30),
        ("lsn_end", 10**400),
        ("lsn_start", -1),
        ("lsn_end_time_ns", 2**63),
        ("size_bytes", 10**20),
        ("duration_seconds", 1e308 * 10),
    ],
)
def test_absurd_metadata_numbers_are_a_damaged_backup_not_a_bug(
    field: str, value: object, backed_up: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _data, repo = backed_up
    path = _edit_metadata(repo, **{field: value})
    for argv in (
        ["backup", "restore", "--repo", repo, "--data-dir", tmp_path / "new"],
        ["backup", "restore", "--repo", repo, "--data-dir", tmp_path / "new", "--until-lsn", "5"],
    ):
        line = assert_error(cli(capsys, *argv), 1)
        assert str(path) in line and field in line and "bug" not in line
    assert not (tmp_path / "new").exists()  # no restore with a false LSN
    listed = cli(capsys, "backup", "list", "--repo", repo, "--json")
    assert listed.code == 0 and "bug" not in listed.err
    assert cli(capsys, "backup", "verify", "--repo", repo).code == 1


# --------------------------------------------------------------------- item 3: restore aimed wrong
def test_replace_refuses_a_directory_that_holds_a_data_dir(
    backed_up: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, repo = backed_up
    lib = tmp_path / "lib"
    other = lib / "orders-b"
    with create_engine(other, backend="lsm", node_name="orders-b") as engine:
        engine.put(b"only", b"copy")
    (lib / "notes.txt").write_text("someone's notes")
    before = tree_hash(lib)
    line = assert_error(cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", lib, "--replace"), 4)
    assert "not a data dir" in line
    assert tree_hash(lib) == before and not (tmp_path / ".quarantine").exists()


def test_replace_refuses_another_nodes_data_dir(
    backed_up: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _data, repo = backed_up
    other = tmp_path / "orders-b"
    with create_engine(other, backend="lsm", node_name="orders-b") as engine:
        engine.put(b"only", b"copy")
    before = tree_hash(other)
    line = assert_error(cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", other, "--replace"), 4)
    assert "node orders-b" in line and "node orders" in line
    assert tree_hash(other) == before
    cow = tmp_path / "orders-cow"
    with create_engine(cow, backend="cow", node_name="orders") as engine:
        engine.put(b"k", b"v")
    assert_error(cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", cow, "--replace"), 4, contains="cow")


def test_replace_takes_the_nodes_own_data_dir_and_one_that_lost_its_marker(
    backed_up: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data, repo = backed_up
    restored = cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", data, "--replace", "--json")
    assert restored.code == 0 and restored.json()["quarantine"]
    (data / "drconsole.json").unlink()  # lost: the lsm files still say what it is
    again = cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", data, "--replace")
    assert again.code == 0, again.err


def test_replace_takes_a_data_dir_ransomware_renamed(
    backed_up: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ransomware playbook restores over a data dir whose files carry ``.locked``: its marker is
    unreadable, its layout (the marker's name, the wal directory) still says what it is."""
    from faults import inject

    data, repo = backed_up
    inject("ransomware", data, seed=3)
    assert not (data / "drconsole.json").exists() and (data / "drconsole.json.locked").exists()
    restored = cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", data, "--replace", "--json")
    assert restored.code == 0, restored.err
    quarantine = Path(restored.json()["quarantine"])
    assert list(quarantine.rglob("drconsole.json.locked")), "the encrypted files are kept, not deleted"
    # A directory that merely holds a file with that name (and no wal/) is still refused.
    lookalike = tmp_path / "lookalike"
    lookalike.mkdir()
    (lookalike / "drconsole.json.bak").write_text("{}")
    (lookalike / "notes.txt").write_text("someone's notes")
    assert_error(
        cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", lookalike, "--replace"),
        4,
        contains="not a data dir",
    )


@pytest.mark.parametrize("target", ["/", "/usr", "/var/lib"])
def test_replace_refuses_system_directories(
    target: str, backed_up: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _data, repo = backed_up
    before = sorted(os.listdir(target))
    assert_error(
        cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", target, "--replace"),
        4,
        contains="system directory",
    )
    assert sorted(os.listdir(target)) == before


def test_the_restore_playbook_refuses_a_parent_directory(
    backed_up: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the issue: `playbook run restore --data-dir /path/lib --yes` moved a whole lib/ to quarantine
    _data, repo = backed_up
    lib = tmp_path / "lib"
    with create_engine(lib / "orders-b", backend="lsm", node_name="orders-b") as engine:
        engine.put(b"only", b"copy")
    before = tree_hash(lib)
    result = cli(
        capsys,
        "playbook",
        "run",
        "restore",
        "--data-dir",
        lib,
        "--param",
        f"repo={repo}",
        "--yes",
        "--waive-safety-copy",
        "test: the refusal comes first",
        "--json",
    )
    assert result.code != 0 and result.json()["status"] in ("failed", "refused")
    assert tree_hash(lib) == before
    assert not (tmp_path / ".quarantine").exists() and not (lib / ".quarantine").exists()


def test_a_config_naming_a_system_directory_is_exit_2_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "drconsole.toml"
    config.write_text('[[node]]\nname = "orders"\nengine = "lsm"\n\ndata_dir = "/"\n')
    line = assert_error(
        cli(capsys, "--config", config, "playbook", "run", "restore", "--node", "orders", "--dry-run"), 2
    )
    assert f"{config}:5" in line and "system directory" in line
    config.write_text('[[node]]\nname = "orders"\nengine = "lsm"\ndata_dir = "/srv/orders"\nbackup_repo = "/usr"\n')
    assert f"{config}:5" in assert_error(cli(capsys, "--config", config, "status"), 2)
