"""``backup create`` on a data dir no process holds packs it in place under its lock.

What goes in: the store's files, the WAL the store does not cover, the marker without its
repository record; what stays out: the lock, the quarantine, the archive status. The store's files
are not touched. A WAL that does not end cleanly sends the backup through the engine's open,
which cuts the torn tail into quarantine first.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
from pathlib import Path

import zstandard

from engines import create_engine, open_engine
from engines.backup import create_backup, restore_backup, verify_repository
from engines.wal import list_segments


def _state(data: Path) -> dict[bytes, bytes]:
    with open_engine(data, mode="ro") as engine:
        return dict(engine.scan())


def _members(archive: Path) -> dict[str, bytes | None]:
    with (
        open(archive, "rb") as raw,
        zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True) as stream,
        tarfile.open(fileobj=stream, mode="r|") as tar,
    ):
        found: dict[str, bytes | None] = {}
        for member in tar:
            content = tar.extractfile(member) if member.isfile() else None
            found[member.name] = content.read() if content is not None else None
        return found


def _store_digest(data: Path, backend: str) -> dict[str, str]:
    names = {"cow": ["data.cow"], "lsm": ["manifest.json", "sstables"], "rocksdb": ["rocksdb"]}[backend]
    digests = {}
    for name in names:
        root = data / name
        for path in sorted([root] if root.is_file() else root.rglob("*")):
            if path.is_file():
                digests[str(path.relative_to(data))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def test_a_free_data_dir_is_packed_in_place(backend: str, tmp_path: Path) -> None:
    data, repo = tmp_path / "data", tmp_path / "repo"
    with create_engine(data, backend=backend, durability="async", wal_segment_bytes=64 * 1024) as engine:
        for n in range(3000):
            engine.put(b"k%05d" % n, b"v" * 60)
    (data / ".quarantine" / "old").mkdir(parents=True)
    (data / ".quarantine" / "old" / "junk").write_bytes(b"set aside by a repair")
    store_before = _store_digest(data, backend)
    result = create_backup(repo, data_dir=data)
    assert result.method == "in-place"
    assert _store_digest(data, backend) == store_before  # packed, not opened: the store is untouched
    members = _members(result.path / f"{result.backup_id}.tar.zst")
    names = set(members)
    assert "data/drconsole.json" in names and all(name.startswith("data") for name in names)
    assert not any(
        ".quarantine" in name or "archive_status" in name or name.endswith("drconsole.lock") for name in names
    )
    packed_marker = json.loads(members["data/drconsole.json"] or b"")
    assert packed_marker["archive"] is None  # a restored copy starts a history of its own
    assert json.loads((data / "drconsole.json").read_text())["archive"]["repo"] == str(repo)
    # Segments the store covers are left out; the ones past it are in.
    packed_wal = sorted(
        name.rsplit("/", 1)[1] for name in names if name.startswith("data/wal/") and name.endswith(".wal")
    )
    assert packed_wal and int(packed_wal[0][:20]) == result.lsn_start
    assert verify_repository(str(repo)).ok
    restored = tmp_path / "restored"
    restore_backup(repo, restored)
    assert _state(restored) == _state(data)
    # By hand, with the standard tools only.
    by_hand = tmp_path / "by-hand"
    by_hand.mkdir()
    archive = result.path / f"{result.backup_id}.tar.zst"
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=result.path, capture_output=True).returncode == 0
    assert subprocess.run(["zstd", "-qt", str(archive)]).returncode == 0
    assert subprocess.run(["tar", "-I", "zstd", "-xf", str(archive), "-C", str(by_hand)]).returncode == 0
    assert _state(by_hand / "data") == _state(data)


def test_a_torn_wal_tail_is_backed_up_through_the_engine(tmp_path: Path) -> None:
    data, repo = tmp_path / "data", tmp_path / "repo"
    with create_engine(data, backend="lsm", durability="async") as engine:
        for n in range(500):
            engine.put(b"k%04d" % n, b"v" * 100)
        expected = dict(engine.scan())
    last = list_segments(data / "wal")[-1]
    with open(last.path, "ab") as handle:  # a writer killed in the middle of an append
        handle.write(b"\x11\x22\x33\x44\x55\x66\x01partial record")
    result = create_backup(repo, data_dir=data)
    assert result.method == "checkpoint"
    assert any((data / ".quarantine").iterdir())  # the engine's open cut the torn tail aside
    restored = tmp_path / "restored"
    restore_backup(repo, restored)
    assert _state(restored) == expected
