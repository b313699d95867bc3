"""The threaded packer (reader, zstd workers, archive writer) against the standard tools.

Each test packs real files and checks the result with what a user without drconsole would use:
``zstd -t``, ``tar -x`` and ``sha256sum``; or feeds it a real fault (a file cut while it is read,
a full tmpfs) and checks that the error is reported, no helper thread is left behind, and nothing
half-written is taken for an archive.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import shutil
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest
import zstandard

from engines.backup.checksums import SUMS_NAME
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
    prefixes = ("member-hasher", "archive-writer", "archive-hasher", "restore-writer", "restore-fsync")
    return {t.name for t in threading.enumerate() if t.name.startswith(prefixes)}


@needs_tools
def test_the_archive_unpacks_with_tar_and_holds_the_data_dir_only(tmp_path: Path) -> None:
    source = _source(tmp_path)
    archive = tmp_path / "a.tar.zst"
    members = members_of(source) + [Member("data/extra.json", 0o644, 0, 5, content=b"{}\n\n\n")]
    packed = pack_members(members, archive)
    assert packed.archive_sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert packed.archive_bytes == archive.stat().st_size
    subprocess.run(["zstd", "-qt", str(archive)], check=True)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "--zstd", "-xf", str(archive), "-C", str(out)], check=True)
    assert [path.name for path in out.iterdir()] == ["data"]  # format 2: no SHA256SUMS member beside it
    files = [p for p in source.rglob("*") if p.is_file()]
    for path in files:
        assert (out / "data" / path.relative_to(source)).read_bytes() == path.read_bytes(), path
    assert (out / "data" / "extra.json").read_bytes() == b"{}\n\n\n"
    assert packed.file_count == len(files) + 1
    assert len([p for p in out.rglob("*") if p.is_file()]) == packed.file_count
    check = read_archive(archive, expected_sha256=packed.archive_sha256)
    assert check.ok and check.file_count == packed.file_count
    assert not _helpers()


def test_every_byte_flipped_in_the_archive_is_caught_by_zstd_alone(tmp_path: Path) -> None:
    """Without the archive's SHA-256 (as if SHA256SUMS were redone too): zstd's decoding and content checksum."""
    source = _source(tmp_path)
    archive = tmp_path / "a.tar.zst"
    pack_members(members_of(source), archive)
    original = archive.read_bytes()
    rng = random.Random(11)
    for at in [0, 4, len(original) - 1, *rng.sample(range(len(original)), 24)]:
        damaged = bytearray(original)
        damaged[at] ^= 1 << rng.randrange(8)
        archive.write_bytes(bytes(damaged))
        check = read_archive(archive)
        assert not check.ok, f"a flipped bit at byte {at} of {len(original)} went unnoticed"
        assert all(where == str(archive) for where, _detail in check.problems), check.problems
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


@pytest.mark.parametrize("extract", [True, False], ids=["restore", "verify"])
def test_a_few_buffers_go_round_and_none_is_reused_while_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extract: bool
) -> None:
    """Pieces are decompressed into a few buffers, the archive read into a few more; each given back is
    scribbled over at once, so a writer or hasher still reading it would restore or hash garbage."""
    from engines.backup import unpack

    source = _source(tmp_path)  # ~21 MB
    archive = tmp_path / "a.tar.zst"
    packed = pack_members(members_of(source), archive)
    monkeypatch.setattr(unpack, "OUT_BUFFERS", 2)
    monkeypatch.setattr(unpack, "READ_BUFFERS", 2)
    monkeypatch.setattr(unpack, "READ_BYTES", 64 << 10)  # many reads of the archive too
    taken: list[int] = []
    real_take, real_give = unpack._Buffers.take, unpack._Buffers.give

    def take(self: unpack._Buffers) -> bytearray:
        buffer = real_take(self)
        taken.append(id(buffer))
        return buffer

    def give(self: unpack._Buffers, buffer: bytearray) -> None:
        buffer[:] = b"\xa5" * len(buffer)
        real_give(self, buffer)

    monkeypatch.setattr(unpack._Buffers, "take", take)
    monkeypatch.setattr(unpack._Buffers, "give", give)
    target = tmp_path / "restored"
    target.mkdir()
    check = read_archive(archive, extract_to=target if extract else None, expected_sha256=packed.archive_sha256)
    assert check.ok, check.problems
    assert check.file_count == packed.file_count and check.archive_bytes == packed.archive_bytes
    assert len(taken) > 40 and len(set(taken)) <= 4, (len(taken), len(set(taken)))
    if extract:
        for path in (p for p in source.rglob("*") if p.is_file()):
            assert (target / path.relative_to(source)).read_bytes() == path.read_bytes(), path
    assert not _helpers()


def test_an_archive_cut_in_its_last_frame_is_refused(tmp_path: Path) -> None:
    """zstd's reader ends quietly where its input does: a cut in the content checksum leaves every tar
    byte decoded, and only the frame walk sees that the frame is short."""
    source = _source(tmp_path)
    archive = tmp_path / "a.tar.zst"
    pack_members(members_of(source), archive)
    data = archive.read_bytes()
    cut = tmp_path / "cut.tar.zst"
    for short in (1, 2, 3, 4, 5, 64, len(data) // 2):
        cut.write_bytes(data[:-short])
        (where, detail), *_rest = read_archive(cut).problems
        assert where == str(cut)
        if short <= 4:
            assert detail == "the tar stream is damaged: the last zstd frame is cut short (truncated archive)"
        else:
            assert "truncated" in detail or "zstd decompression failed" in detail, detail
    cut.write_bytes(data + b"\0" * 4)  # and bytes after the last frame are not ignored
    assert not read_archive(cut).ok


def test_a_block_that_fails_to_decode_is_placed_in_the_stream(tmp_path: Path) -> None:
    """A zstd block marked with the reserved type mid-archive: the problem says where decoding stopped."""
    source = _source(tmp_path)
    archive = tmp_path / "a.tar.zst"
    pack_members(members_of(source), archive)
    data = bytearray(archive.read_bytes())
    tar = zstandard.ZstdDecompressor().stream_reader(bytes(data), read_across_frames=True).read()
    starts = {}  # member name -> offset of its header in the tar stream
    with tarfile.open(fileobj=io.BytesIO(tar)) as listing:
        for info in listing.getmembers():
            starts[info.name] = info.offset
    header = _block_at(data, len(data) // 2)
    data[header] |= 0b110  # block type 3: reserved, which no decoder accepts
    archive.write_bytes(bytes(data))
    (where, detail), *_rest = read_archive(archive).problems
    assert where == str(archive)
    match = re.search(r"zstd decompression failed after byte (\d+) of the tar stream, in or after (\S+):", detail)
    assert match, detail
    position, member = int(match.group(1)), match.group(2)
    assert member in starts and 0 < starts[member] <= position < len(tar), (member, position)


def _block_at(frame: bytearray, near: int) -> int:
    """The offset of the header of the first zstd block at or after ``near`` (one frame, no dictionary)."""
    assert frame[:4] == b"\x28\xb5\x2f\xfd"
    descriptor = frame[4]
    single, dictionary, size_flag = descriptor >> 5 & 1, descriptor & 3, descriptor >> 6
    at = 5 + (0 if single else 1) + (0, 1, 2, 4)[dictionary] + ((1 if single else 0), 2, 4, 8)[size_flag]
    while True:
        block = int.from_bytes(frame[at : at + 3], "little")
        if at >= near:
            return at
        assert not block & 1, "the last block came first"
        kind, size = block >> 1 & 3, block >> 3
        at += 3 + (1 if kind == 1 else size)


@needs_tools
def test_a_member_changed_inside_a_recompressed_format_1_archive_is_caught_by_its_own_sum(tmp_path: Path) -> None:
    """An archive of format 1 ends with every file's SHA-256: a member changed and recompressed is named by it."""
    source = _source(tmp_path)
    archive = tmp_path / "a.tar.zst"
    pack_members(members_of(source), archive)
    tar = subprocess.run(["zstd", "-dc", str(archive)], check=True, capture_output=True).stdout
    sums = "".join(
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  data/{path.relative_to(source).as_posix()}\n"
        for path in sorted(source.rglob("*"))
        if path.is_file()
    ).encode()
    listing = tarfile.TarInfo(SUMS_NAME)
    listing.size = len(sums)
    end = len(tar.rstrip(b"\0"))  # the end-of-archive blocks and record padding follow the last member
    end += (-end) % tarfile.BLOCKSIZE
    old_format = tar[:end] + listing.tobuf(tarfile.PAX_FORMAT) + sums + bytes((-len(sums)) % tarfile.BLOCKSIZE)
    old_format += bytes(2 * tarfile.BLOCKSIZE)
    victim = (source / "sstables" / "007.sst").read_bytes()
    at = old_format.index(victim[:64]) + len(victim) // 2
    changed = old_format[:at] + bytes([old_format[at] ^ 0x20]) + old_format[at + 1 :]
    for name, stream, problems in (
        ("intact.tar.zst", old_format, []),
        ("changed.tar.zst", changed, ["data/sstables/007.sst"]),
    ):
        rewritten = tmp_path / name
        compressed = subprocess.run(["zstd", "-q", "-c"], input=stream, check=True, capture_output=True).stdout
        rewritten.write_bytes(compressed)
        for extract_to in (None, tmp_path / f"out-{name}"):
            if extract_to is not None:
                extract_to.mkdir()
            check = read_archive(rewritten, extract_to=extract_to, member_sums=True)
            assert [where for where, _detail in check.problems] == [f"{rewritten}:{p}" for p in problems]
            assert all("checksum mismatch" in detail for _where, detail in check.problems)
        # Read as format 2, its SHA256SUMS is a member no data dir has.
        assert [detail for _where, detail in read_archive(rewritten).problems] == ["unexpected member"]
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


def test_a_restore_fsyncs_every_file_while_holding_few_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fsyncs wait until the writing is over, but a bounded number of restored files stays open for theirs."""
    from engines import fsio
    from engines.backup import unpack

    source = _source(tmp_path)  # 49 files
    archive = tmp_path / "a.tar.zst"
    packed = pack_members(members_of(source), archive)
    monkeypatch.setattr(unpack, "HELD_FILES", 4)
    synced: list[str] = []
    open_restored: list[int] = []
    target = tmp_path / "restored"
    target.mkdir()

    class Recording(fsio.FileSystem):
        def fsync(self, fd: int, site: str | None) -> None:
            synced.append(os.readlink(f"/proc/self/fd/{fd}"))
            open_restored.append(sum(_opened(name).startswith(str(target)) for name in os.listdir("/proc/self/fd")))
            super().fsync(fd, site)

    previous = fsio.install(Recording())
    try:
        check = read_archive(archive, extract_to=target, expected_sha256=packed.archive_sha256)
    finally:
        fsio.install(previous)
    assert check.ok, check.problems
    files = sorted(str(p) for p in target.rglob("*") if p.is_file())
    assert sorted(synced) == files  # each restored file fsynced once, before read_archive returned
    # held for their fsync, queued to be, the one being fsynced and the one being written
    assert max(open_restored) <= 4 + 4 + 2, open_restored
    assert not _helpers()


def _opened(fd: str) -> str:
    """The path open on descriptor ``fd``; empty if it closed meanwhile (other threads open and close)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""
