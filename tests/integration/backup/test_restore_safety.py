"""Restore never loses a data dir: staging + rename, --replace to quarantine, kill -9 at any point."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from backup_support import Model, assert_error, cli, export, tree_hash, write_rows

import engines.backup.restore as restore_module
from engines import create_engine, open_engine
from engines.backup import attach_archiver, create_backup, restore_backup
from engines.errors import EngineError

CHILD = Path(__file__).with_name("restore_child.py")


@pytest.fixture(scope="module")
def repo_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Model]:
    """A repository holding a full backup of a few MB and archived WAL after it (rocksdb)."""
    root = tmp_path_factory.mktemp("restore")
    source, repo, model = root / "data", root / "repo", Model()
    with create_engine(source, backend="rocksdb", durability="async", wal_segment_bytes=256 * 1024) as engine:
        for start in range(0, 4000, 500):
            entries = [(f"big{n:05d}".encode(), os.urandom(600)) for n in range(start, start + 500)]
            model.record(engine.write_batch(entries), list(entries))
    create_backup(repo, data_dir=source)
    with open_engine(source, durability="async") as engine:
        attach_archiver(engine, repo)
        write_rows(engine, model, 0, 3000, tag="after")
    create_backup(repo, data_dir=source, incremental=True)
    return repo, model


@pytest.fixture
def old_data_dir(tmp_path: Path) -> Path:
    """A live-looking data dir that a restore must never lose: the backed-up node's own (node "data")."""
    with create_engine(tmp_path / "orders", backend="rocksdb", node_name="data") as engine:
        engine.put(b"precious", b"only copy")
    return tmp_path / "orders"


def test_restore_over_an_existing_dir_without_replace_exits_4_and_changes_nothing(
    repo_template, old_data_dir, capsys
) -> None:
    repo, _model = repo_template
    before = tree_hash(old_data_dir)
    result = cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", old_data_dir)
    assert_error(result, 4, contains="--replace")
    assert tree_hash(old_data_dir) == before
    assert sorted(p.name for p in old_data_dir.parent.iterdir()) == ["orders"]


def test_replace_moves_the_old_dir_to_quarantine(repo_template, old_data_dir, capsys) -> None:
    repo, model = repo_template
    before = tree_hash(old_data_dir)
    result = cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", old_data_dir, "--replace", "--json")
    assert result.code == 0, result.err
    quarantine = Path(result.json()["quarantine"])
    assert quarantine.parent == old_data_dir.parent / ".quarantine"
    assert quarantine.name.startswith("pre-restore-") and quarantine.name.endswith("-orders")
    assert tree_hash(quarantine) == before
    assert export(old_data_dir) == model.state_at(10**9)


def test_a_live_data_dir_is_refused_even_with_replace(repo_template, old_data_dir, capsys) -> None:
    repo, _model = repo_template
    with open_engine(old_data_dir):
        result = cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", old_data_dir, "--replace")
        assert_error(result, 4, contains="in use")
    assert export(old_data_dir) == {b"precious": b"only copy"}


def test_an_empty_existing_dir_is_restored_into(repo_template, tmp_path: Path) -> None:
    repo, model = repo_template
    (tmp_path / "empty").mkdir()
    restore_backup(repo, tmp_path / "empty")
    assert export(tmp_path / "empty") == model.state_at(10**9)


def _kill_at(repo: Path, target: Path, point: str, *extra: str) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(repo), str(target), point, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert child.stdout is not None and child.stderr is not None
    try:
        line = child.stdout.readline()
        assert line.strip() == b"stopped", child.stderr.read().decode(errors="replace")
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        child.stderr.close()


@pytest.mark.parametrize("point", ["unpack", "replay", "swap"])
def test_kill_9_mid_restore_leaves_a_new_target_absent(repo_template, tmp_path: Path, point: str) -> None:
    repo, model = repo_template
    target = tmp_path / "fresh"
    _kill_at(repo, target, point)
    assert not target.exists()
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".fresh.restore-")]
    assert leftovers  # the staging dir a crash leaves...
    restore_backup(repo, target)  # ...is cleared by the next restore, which succeeds
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".fresh.restore-")]
    assert export(target) == model.state_at(10**9)


@pytest.mark.parametrize("point", ["unpack", "replay", "swap"])
def test_kill_9_mid_restore_with_replace_leaves_the_old_dir_untouched(repo_template, old_data_dir, point: str) -> None:
    repo, _model = repo_template
    before = tree_hash(old_data_dir)
    _kill_at(repo, old_data_dir, point, "--replace")
    assert tree_hash(old_data_dir) == before
    assert not (old_data_dir.parent / ".quarantine").exists()


def test_kill_9_between_the_swap_and_the_quarantine_loses_nothing(repo_template, old_data_dir) -> None:
    repo, model = repo_template
    before = tree_hash(old_data_dir)
    _kill_at(repo, old_data_dir, "quarantine", "--replace")
    # The swap happened: the target is the restored dir; the old one waits under the staging name...
    assert export(old_data_dir) == model.state_at(10**9)
    waiting = [p for p in old_data_dir.parent.iterdir() if p.name.startswith(".orders.restore-")]
    assert len(waiting) == 1 and tree_hash(waiting[0]) == before
    # ...and the next restore of that name moves it to quarantine instead of clearing it.
    restore_backup(repo, old_data_dir, replace=True)
    quarantined = sorted((old_data_dir.parent / ".quarantine").iterdir())
    assert before in {tree_hash(path) for path in quarantined}


def test_an_exception_mid_restore_leaves_the_target_untouched(repo_template, old_data_dir, monkeypatch) -> None:
    repo, _model = repo_template
    before = tree_hash(old_data_dir)

    def broken_replay(*args: object, **kwargs: object) -> None:
        raise RuntimeError("injected failure during replay")

    monkeypatch.setattr(restore_module, "replay", broken_replay)
    with pytest.raises(RuntimeError, match="injected"):
        restore_backup(repo, old_data_dir, replace=True)
    assert tree_hash(old_data_dir) == before
    assert sorted(p.name for p in old_data_dir.parent.iterdir()) == ["orders"]


def test_a_corrupt_archive_is_refused_before_the_target_is_touched(
    repo_template, old_data_dir, tmp_path: Path, capsys
) -> None:
    import shutil

    from backup_support import corrupt_byte

    repo = tmp_path / "repo"
    shutil.copytree(repo_template[0], repo)
    archive = next(repo.glob("*/backup_*/backup_*.tar.zst"))
    corrupt_byte(archive, archive.stat().st_size // 2)
    before = tree_hash(old_data_dir)
    result = cli(
        capsys, "backup", "restore", "--repo", repo, archive.parent.name, "--data-dir", old_data_dir, "--replace"
    )
    assert_error(result, 1, contains="damaged")
    assert tree_hash(old_data_dir) == before
    assert sorted(p.name for p in old_data_dir.parent.iterdir()) == ["orders", "repo"]
    with pytest.raises(EngineError):
        restore_backup(repo, tmp_path / "new", reference=archive.parent.name)
    assert not (tmp_path / "new").exists()


def test_a_full_disk_mid_restore_leaves_nothing_behind(repo_template, small_disk: Path, capsys) -> None:
    repo, _model = repo_template
    target = small_disk / "orders"
    result = cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", target)
    assert "no space left" in assert_error(result, 1).lower()
    assert list(small_disk.iterdir()) == []  # neither the target nor our staging dir


def test_a_target_that_holds_the_repository_is_refused(repo_template, tmp_path: Path, capsys) -> None:
    repo, _model = repo_template
    result = cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", repo.parent, "--replace")
    assert_error(result, 2, contains="overlap")
    assert_error(cli(capsys, "backup", "restore", "--repo", repo, "--data-dir", repo / "daily" / "x"), 2)
    assert repo.is_dir() and (repo / "wal-archive").is_dir()
