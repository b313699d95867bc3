"""Messages that name the real cause: a read-only file system is not a permission problem; a backup's
problem points at `backup verify`."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
from cli_support import make_data_dir, run, tree_hash

from console.cli.main import _default_hint
from engines.errors import map_os_error


def test_erofs_and_eacces_are_told_apart() -> None:
    read_only = map_os_error(OSError(errno.EROFS, "Read-only file system", "/data/wal/1.wal"), "writing the WAL")
    assert "/data/wal/1.wal is on a read-only file system" in read_only.message
    assert "permission" not in read_only.message and "remount" in (read_only.hint or "")
    denied = map_os_error(OSError(errno.EACCES, "Permission denied", "/data/wal/1.wal"), "writing the WAL")
    assert "permission denied on /data/wal/1.wal" in denied.message


def test_backup_errors_point_at_backup_verify() -> None:
    assert "backup verify" in _default_hint(1, "backup")
    assert "engine verify" in _default_hint(1, "engine")


@pytest.mark.skipif(os.geteuid() != 0, reason="a read-only bind mount needs root")
def test_a_write_on_a_read_only_mount_says_read_only(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path / "data", "lsm", rows=3)
    mounted = tmp_path / "ro"
    mounted.mkdir()
    bind = subprocess.run(["mount", "--bind", str(data), str(mounted)], capture_output=True, text=True)
    if bind.returncode != 0:
        pytest.skip(f"bind mounts are refused here: {bind.stderr.strip()}")
    try:
        remount = subprocess.run(["mount", "-o", "remount,ro,bind", str(mounted)], capture_output=True, text=True)
        if remount.returncode != 0:
            pytest.skip(f"a read-only remount is refused here: {remount.stderr.strip()}")
        before = tree_hash(data)
        done = run("engine", "put", "--data-dir", mounted, "k", "v")
        assert done.code == 3, done.err
        assert "read-only file system" in done.err and "permission denied" not in done.err
        assert tree_hash(data) == before
    finally:
        subprocess.run(["umount", str(mounted)], check=False)
