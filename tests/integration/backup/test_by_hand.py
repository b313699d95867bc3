"""A full backup is restorable and checkable by hand with tar, zstd and sha256sum (no drconsole)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from backup_support import Model, export, write_rows

from engines import create_engine, open_engine
from engines.backup import create_backup

needs_tools = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("tar", "zstd", "sha256sum")), reason="tar, zstd and sha256sum are needed"
)


def _sh(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=120)


@needs_tools
def test_restore_by_hand_with_tar_zstd_and_sha256sum(backend: str, tmp_path: Path) -> None:
    source, repo = tmp_path / "data", tmp_path / "repo"
    model = Model()
    with create_engine(source, backend=backend, durability="async") as engine:
        write_rows(engine, model, 0, 500, tag="x")
    result = create_backup(repo, data_dir=source)
    backup_dir = result.path
    archive = backup_dir / f"{result.backup_id}.tar.zst"
    # 1. the archive against the SHA256SUMS beside it, and its content against zstd's checksum
    checked = _sh("sha256sum -c SHA256SUMS", backup_dir)
    assert checked.returncode == 0 and ": OK" in checked.stdout, checked.stderr
    tested = _sh(f"zstd -t {archive}", tmp_path)
    assert tested.returncode == 0, tested.stderr
    # 2. unpack, two ways: GNU tar's --zstd, and zstd piped into any tar
    for way, command in (
        ("gnu", "tar --zstd -xf {archive} -C {dest}"),
        ("pipe", "zstd -dc {archive} | tar -xf - -C {dest}"),
    ):
        dest = tmp_path / f"by-hand-{way}"
        dest.mkdir()
        unpacked = _sh(command.format(archive=archive, dest=dest), tmp_path)
        assert unpacked.returncode == 0, unpacked.stderr
        # 3. data/ is the data dir, ready to open, and all the archive holds
        assert [path.name for path in dest.iterdir()] == ["data"]
        assert export(dest / "data") == model.state_at(10**9)
        with open_engine(dest / "data", mode="ro") as engine:
            assert engine.last_lsn == result.lsn_end


@needs_tools
def test_sha256sum_catches_a_damaged_archive_by_hand(tmp_path: Path) -> None:
    source, repo = tmp_path / "data", tmp_path / "repo"
    with create_engine(source, backend="rocksdb") as engine:
        engine.put(b"k", b"v")
    result = create_backup(repo, data_dir=source)
    archive = result.path / f"{result.backup_id}.tar.zst"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))
    assert _sh("sha256sum -c SHA256SUMS", result.path).returncode != 0
    assert _sh(f"zstd -t {archive}", tmp_path).returncode != 0


@needs_tools
def test_archived_wal_checks_by_hand(tmp_path: Path) -> None:
    source, repo = tmp_path / "data", tmp_path / "repo"
    with create_engine(source, backend="rocksdb", durability="async", wal_segment_bytes=64 * 1024) as engine:
        for n in range(2000):
            engine.put(b"k%05d" % n, b"v" * 40)
    create_backup(repo, data_dir=source)
    # The first full backup covers the WAL written so far; what follows goes to the archive.
    with open_engine(source, durability="async") as engine:
        for n in range(2000, 3000):
            engine.put(b"k%05d" % n, b"w" * 40)
    incremental = create_backup(repo, data_dir=source, incremental=True)
    assert incremental.backup_id is not None
    assert _sh("sha256sum -c SHA256SUMS", repo / "wal-archive").returncode == 0
    # its SHA256SUMS names ../../wal-archive/<segment>
    assert _sh("sha256sum -c SHA256SUMS", incremental.path).returncode == 0


@needs_tools
def test_roll_forward_by_hand_with_the_archived_wal(backend: str, tmp_path: Path) -> None:
    """Unpack the full backup, copy the archived segments into data/wal/: the engine replays them on open."""
    from engines.backup import attach_archiver

    source, repo = tmp_path / "data", tmp_path / "repo"
    model = Model()
    with create_engine(source, backend=backend, durability="async", wal_segment_bytes=64 * 1024) as engine:
        write_rows(engine, model, 0, 500, tag="x")
    full = create_backup(repo, data_dir=source)
    with open_engine(source, durability="async") as engine:
        attach_archiver(engine, repo)
        write_rows(engine, model, 500, 3000, tag="y")
    create_backup(repo, data_dir=source, incremental=True)
    dest = tmp_path / "by-hand"
    dest.mkdir()
    done = _sh(
        f"tar --zstd -xf {full.path / (str(full.backup_id) + '.tar.zst')} -C {dest} "
        f"&& cp {repo / 'wal-archive'}/*.wal {dest / 'data' / 'wal'}/",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert export(dest / "data") == model.state_at(10**9)


@needs_tools
def test_an_archive_of_many_frames_unpacks_by_hand_with_tar_i_zstd(tmp_path: Path) -> None:
    """The frames pack.py cuts the stream into read back as one stream with ``tar -I zstd -xf``."""
    import os

    import engines.backup.pack as pack

    source = tmp_path / "source"
    (source / "sub").mkdir(parents=True)
    (source / "a").write_bytes(os.urandom(200_000) * 5)
    (source / "sub" / "b").write_bytes(b"row|" * 400_000)
    before, pack.FRAME_BYTES = pack.FRAME_BYTES, 128 * 1024
    try:
        pack.pack_members(pack.members_of(source), tmp_path / "a.tar.zst")
    finally:
        pack.FRAME_BYTES = before
    frames = _sh("zstd -lv a.tar.zst", tmp_path)
    assert frames.returncode == 0, frames.stderr
    counts = [line for line in frames.stdout.splitlines() if "Frames:" in line]
    assert counts and int(counts[0].split(":")[1]) >= 3, frames.stdout  # a frame ends after each file here
    dest = tmp_path / "by-hand"
    dest.mkdir()
    assert _sh("zstd -qt a.tar.zst", tmp_path).returncode == 0  # every frame's content checksum
    unpacked = _sh(f"tar -I zstd -xf {tmp_path / 'a.tar.zst'} -C {dest}", tmp_path)
    assert unpacked.returncode == 0, unpacked.stderr
    assert (dest / "data" / "a").read_bytes() == (source / "a").read_bytes()
    assert (dest / "data" / "sub" / "b").read_bytes() == (source / "sub" / "b").read_bytes()
