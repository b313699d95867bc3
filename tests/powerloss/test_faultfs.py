"""The power-cut file system itself: what it forgets and what it keeps."""

from __future__ import annotations

import os
from pathlib import Path

from faultfs import PowerCutFS

from engines import fsio


def _write(path: Path, data: bytes, *, sync: bool) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        if sync:
            fsio.fsync(handle.fileno())


def _under(fs: PowerCutFS) -> PowerCutFS:
    fsio.install(fs)
    return fs


def test_unsynced_data_and_unsynced_creates_are_forgotten(tmp_path: Path) -> None:
    (tmp_path / "old").write_bytes(b"durable before")
    fs = _under(PowerCutFS(tmp_path))
    try:
        _write(tmp_path / "synced-no-dir", b"a", sync=True)  # data synced, name never
        _write(tmp_path / "old", b"rewritten, never synced", sync=False)
        fsio.fsync_dir(tmp_path)
        _write(tmp_path / "after-dir-sync", b"b", sync=True)  # created after the directory fsync
    finally:
        fsio.install(fsio.FileSystem())
    fs.power_cycle()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["old", "synced-no-dir"]
    assert (tmp_path / "old").read_bytes() == b"durable before"
    assert (tmp_path / "synced-no-dir").read_bytes() == b"a"


def test_a_rename_counts_once_its_directory_is_fsynced(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "file").write_bytes(b"payload")
    fs = _under(PowerCutFS(tmp_path))
    try:
        fsio.rename(tmp_path / "a" / "file", tmp_path / "b" / "file")
        fsio.fsync_dir(tmp_path / "a")  # the old name is gone for good, the new one is not there yet
    finally:
        fsio.install(fsio.FileSystem())
    fs.power_cycle()
    assert not (tmp_path / "a" / "file").exists() and not (tmp_path / "b" / "file").exists()


def test_a_cut_at_a_sync_call_keeps_what_came_before(tmp_path: Path) -> None:
    fs = _under(PowerCutFS(tmp_path, cut_at=3))
    try:
        fd = os.open(tmp_path / "log", os.O_WRONLY | os.O_CREAT, 0o644)
        fsio.fsync_dir(tmp_path)  # call 1
        for number in range(5):  # calls 2.. : the 3rd call is the cut
            fsio.pwrite_dsync(fd, b"%d" % number, number)
        os.close(fd)
    finally:
        fsio.install(fsio.FileSystem())
    fs.power_cycle()
    assert fs.cut_site is not None and "pwrite_dsync" in fs.cut_site
    assert (tmp_path / "log").read_bytes() == b"0"


def test_dsync_write_makes_only_its_range_durable(tmp_path: Path) -> None:
    fs = _under(PowerCutFS(tmp_path))
    try:
        fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o644)
        fsio.fsync_dir(tmp_path)
        os.pwrite(fd, b"AAAA", 0)  # never synced
        fsio.pwrite_dsync(fd, b"BB", 4)
        os.close(fd)
    finally:
        fsio.install(fsio.FileSystem())
    fs.power_cycle()
    assert (tmp_path / "f").read_bytes() == b"\0\0\0\0BB"


def test_torn_keeps_a_prefix_of_appends_and_some_overwritten_blocks(tmp_path: Path) -> None:
    seen = set()
    for seed in range(12):
        root = tmp_path / f"s{seed}"
        root.mkdir()
        (root / "f").write_bytes(b"o" * 8192)
        fs = _under(PowerCutFS(root, torn_seed=seed))
        try:
            with open(root / "f", "r+b") as handle:
                handle.write(b"n" * 8192 + b"appended" * 100)
        finally:
            fsio.install(fsio.FileSystem())
        fs.power_cycle()
        data = (root / "f").read_bytes()
        blocks = (data[:4096] == b"n" * 4096, data[4096:8192] == b"n" * 4096)
        tail = data[8192:]
        assert (b"appended" * 100).startswith(tail)
        assert all(data[start : start + 4096] in (b"o" * 4096, b"n" * 4096) for start in (0, 4096))
        seen.add((blocks, len(tail) > 0))
    assert len(seen) > 2  # several outcomes across seeds, not always all or nothing


def test_first_block_keeps_only_the_first_overwritten_block_and_no_append(tmp_path: Path) -> None:
    old = bytes([1]) * 4096 + bytes([2]) * 4096 + bytes([3]) * 4096
    (tmp_path / "file").write_bytes(old)
    fs = _under(PowerCutFS(tmp_path, first_block=True))
    try:
        fd = os.open(tmp_path / "file", os.O_RDWR)
        try:
            os.pwrite(fd, b"\x09" * 4096, 4096)  # block 1: the first one changed
            os.pwrite(fd, b"\x08" * 10, 8192)  # block 2
            os.pwrite(fd, b"appended", len(old))
        finally:
            os.close(fd)
    finally:
        fsio.install(fsio.FileSystem())
    fs.power_cycle()
    assert (tmp_path / "file").read_bytes() == old[:4096] + b"\x09" * 4096 + old[8192:]
