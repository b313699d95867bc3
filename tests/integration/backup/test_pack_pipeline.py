"""The threaded packer (reader, member hashers, zstd workers, archive writer) against the standard tools.

Each test packs real files and checks the result with what a user without drconsole would use:
``zstd -t``, ``tar -x`` and ``sha256sum``; or feeds it a real fault (a file cut while it is read,
a full tmpfs) and checks that the error is reported, no helper thread is left behind, and nothing
half-written is taken for an archive.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from engines.backup.checksums import SUMS_NAME, parse_sums
from engines.backup.errors import BackupCorruptionError
from engines.backup.pack import READ_BYTES, Member, members_of, pack_members
from engines.backup.unpack import read_archive
from engines.errors import EngineError

needs_tools = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("tar", "zstd")), reason="tar and zstd are needed to read the archive"
)


def _source(root: Path) -> Path:
    """Many small files, files around the read size, an empty one, and one file bigger than a zstd job."""
    source = root / "source"
    (source / "sstables").mkdir(parents=True)
    rng = random.Random(7)
    for n in range(40):
        (source / "sstables" / f"{n:03d}.sst").write_bytes(rng.randbytes(rng.randrange(1, 70_000)))
    for size in (READ_BYTES - 1, READ_BYTES, READ_BYTES + 1, 3 * READ_BYTES):
        (source / f"edge-{size}").write_bytes(rng.randbytes(size))
    (source / "empty").write_bytes(b"")
    pool = rng.randbytes(1 << 20)
    (source / "big.cow").write_bytes(b"".join(pool[n * 997 :][: 1 << 16] for n in range(300)))  # ~19 MB
    return source


def _helpers() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith(("member-hasher", "archive-writer"))}


@needs_tools
@pytest.mark.parametrize("hash_threads", [0, 2])  # the reader hashes (2 cores), or threads do (more)
def test_the_archive_unpacks_with_tar_and_its_sums_match_sha256sum(tmp_path: Path, hash_threads: int) -> None:
    source = _source(tmp_path)
    archive = tmp_path / "a.tar.zst"
    members = members_of(source) + [Member("data/extra.json", 0o644, 0, 5, content=b"{}\n\n\n")]
    packed = pack_members(members, archive, hash_threads=hash_threads)
    assert packed.archive_sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert packed.archive_bytes == archive.stat().st_size
    subprocess.run(["zstd", "-qt", str(archive)], check=True)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "--zstd", "-xf", str(archive), "-C", str(out)], check=True)
    for path in source.rglob("*"):
        if path.is_file():
            assert (out / "data" / path.relative_to(source)).read_bytes() == path.read_bytes(), path
    listed = dict(parse_sums((out / SUMS_NAME).read_text()))
    assert len(listed) == packed.file_count == len([p for p in source.rglob("*") if p.is_file()]) + 1
    # SHA256SUMS names members data/...: checked from the archive's root, as the README shows
    checked = subprocess.run(["sha256sum", "-c", "--quiet", SUMS_NAME], cwd=out, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert listed["data/extra.json"] == hashlib.sha256(b"{}\n\n\n").hexdigest()
    assert read_archive(archive, expected_sha256=packed.archive_sha256).ok
    assert not _helpers()


def test_a_byte_flipped_in_the_archive_is_caught(tmp_path: Path) -> None:
    source = _source(tmp_path)
    archive = tmp_path / "a.tar.zst"
    packed = pack_members(members_of(source), archive)
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))
    check = read_archive(archive, expected_sha256=packed.archive_sha256)
    assert not check.ok
    assert any("checksum mismatch" in detail for _where, detail in check.problems)


def test_a_file_cut_while_it_is_packed_is_an_error_and_every_helper_ends(tmp_path: Path) -> None:
    source = _source(tmp_path)
    members = members_of(source)
    big = next(m for m in members if m.name.endswith("big.cow"))
    os.truncate(big.path, big.size // 2)  # listed at full size, shorter when read: what a writer cutting it does
    with pytest.raises(BackupCorruptionError, match="shrank"):
        pack_members(members, tmp_path / "a.tar.zst")
    assert not _helpers()


def test_a_full_disk_is_an_error_and_every_helper_ends(tmp_path: Path, small_disk: Path) -> None:
    source = _source(tmp_path)
    with pytest.raises(EngineError):
        pack_members(members_of(source), small_disk / "a.tar.zst")
    assert not _helpers()


def test_a_restore_equals_the_source_byte_for_byte(tmp_path: Path) -> None:
    source = _source(tmp_path)
    archive = tmp_path / "a.tar.zst"
    packed = pack_members(members_of(source), archive)
    target = tmp_path / "restored"
    target.mkdir()
    check = read_archive(archive, extract_to=target, expected_sha256=packed.archive_sha256)
    assert check.ok, check.problems
    assert check.file_count == packed.file_count
    originals = sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file())
    assert sorted(p.relative_to(target) for p in target.rglob("*") if p.is_file()) == originals
    for relative in originals:
        assert (target / relative).read_bytes() == (source / relative).read_bytes(), relative
    assert not _helpers()


@needs_tools
def test_a_member_changed_inside_a_recompressed_archive_is_caught_by_its_own_sum(tmp_path: Path) -> None:
    """zstd's checksum and the archive's SHA-256 are redone by whoever rewrote it: only the member sums catch it."""
    source = _source(tmp_path)
    archive = tmp_path / "a.tar.zst"
    pack_members(members_of(source), archive)
    tar = subprocess.run(["zstd", "-dc", str(archive)], check=True, capture_output=True).stdout
    victim = (source / "sstables" / "007.sst").read_bytes()
    at = tar.index(victim[:64]) + len(victim) // 2
    changed = tar[:at] + bytes([tar[at] ^ 0x20]) + tar[at + 1 :]
    rewritten = tmp_path / "b.tar.zst"
    rewritten.write_bytes(subprocess.run(["zstd", "-q", "-c"], input=changed, check=True, capture_output=True).stdout)
    for extract_to in (None, tmp_path / "out"):
        if extract_to is not None:
            extract_to.mkdir()
        check = read_archive(rewritten, extract_to=extract_to)  # no archive sum: as if SHA256SUMS were redone too
        assert [where for where, _detail in check.problems] == [f"{rewritten}:data/sstables/007.sst"]
        assert "checksum mismatch" in check.problems[0][1]
    assert not _helpers()


def test_repeats_megabytes_apart_are_found(tmp_path: Path) -> None:
    """A database repeats itself across pages and blocks megabytes apart: the 8 MB window finds what 2 MB cannot."""
    rng = random.Random(5)
    block, between = rng.randbytes(1 << 20), rng.randbytes(4 << 20)
    source = tmp_path / "source"
    source.mkdir()
    (source / "table").write_bytes(block + between + block)  # the block again, 5 MB after it began
    archive = tmp_path / "a.tar.zst"
    packed = pack_members(members_of(source), archive)
    assert packed.source_bytes == 6 << 20
    # Random bytes do not compress: only the second copy of the block can go, and it does.
    assert packed.archive_bytes < (5 << 20) + (64 << 10), packed.archive_bytes
    assert read_archive(archive, expected_sha256=packed.archive_sha256).ok
