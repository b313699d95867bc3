"""The archive format of a full backup: a POSIX tar stream compressed with zstd, and how it is written.

Standard formats, so a backup outlives the tool: ``tar --zstd -xf`` (or ``zstd -dc | tar -x``)
unpacks it and ``sha256sum -c`` checks it. Inside the archive::

    data/...            the data directory, ready to open
    SHA256SUMS          the SHA-256 of every file under data/, the last member

The archive itself is covered by the ``SHA256SUMS`` beside it. Packing reads every file once:
its bytes go to the compressor (zstd's worker threads) and to a thread hashing the members,
and the compressed stream to a thread hashing the archive while this one writes it. Reading it
back is ``unpack.py``.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import zstandard

from engines import fsio
from engines.backup.checksums import SUMS_NAME, format_sums
from engines.backup.errors import BackupCorruptionError
from engines.backup.hashing import InlineMemberHasher
from engines.backup.progress import ProgressCallback, ProgressTracker
from engines.errors import map_os_error

__all__ = ["DATA_PREFIX", "ZSTD_LEVEL", "Member", "PackResult", "members_of", "pack_members", "directory_size"]

DATA_PREFIX = "data"
ZSTD_LEVEL = 3
# Compression runs on every core (zstd's worker threads); reading, tar framing, hashing and writing
# run in this thread.
ZSTD_THREADS = os.cpu_count() or 1
# Small pieces: each is read, hashed and handed to zstd while it is still in the CPU cache, and
# malloc reuses the same memory for the next one (a fresh 4 MB buffer per read cost a page fault
# per 4 KB). Measured on 250 MB: 4 MB pieces 0.85-0.88 s CPU, 128 KB reads + 256 KB writes 0.73-0.76.
READ_BYTES = 128 << 10
WRITE_BYTES = 256 << 10
FRAME_BYTES = 32 << 20  # tar bytes per zstd frame: large enough that frame boundaries cost little ratio
# Start the kernel writing the archive out every this many bytes, so the fsync at the end waits
# for the last stretch only (Linux: POSIX_FADV_DONTNEED on dirty pages starts their writeback).
WRITEBACK_BYTES = 16 << 20


@dataclass
class PackResult:
    archive_sha256: str
    archive_bytes: int
    source_bytes: int
    file_count: int


@dataclass(frozen=True)
class Member:
    """One tar member under ``data/``: a directory, a file read from ``path``, or bytes in memory."""

    name: str
    mode: int
    mtime: float
    size: int = 0
    path: Path | None = None
    content: bytes | None = None
    directory: bool = False

    def header(self, owner: tuple[int, int]) -> bytes:
        entry = tarfile.TarInfo(self.name)
        entry.mode, entry.mtime = self.mode, int(self.mtime)
        entry.uid, entry.gid = owner
        if self.directory:
            entry.type = tarfile.DIRTYPE
        else:
            entry.type, entry.size = tarfile.REGTYPE, self.size
        return entry.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def members_of(source: Path, relative: Iterable[str] | None = None, prefix: str = DATA_PREFIX) -> list[Member]:
    """The directories and regular files under ``source`` (only the ``relative`` paths when given), sorted.

    Symbolic links, sockets and the like are left out: a data dir holds none of its own.
    """
    found: list[Member] = []
    roots = [source] if relative is None else [source / item for item in relative]
    if relative is not None:
        info = os.stat(source)
        found.append(Member(prefix, stat.S_IMODE(info.st_mode), info.st_mtime, directory=True))
    for root_path in roots:
        if not root_path.exists():
            continue
        if root_path.is_file():
            found.append(_file_member(source, root_path, prefix))
            continue
        for root, dirs, files in os.walk(root_path):
            dirs.sort()
            base = Path(root)
            rel = base.relative_to(source).as_posix()
            info = os.stat(base)
            found.append(
                Member(
                    prefix if rel == "." else f"{prefix}/{rel}",
                    stat.S_IMODE(info.st_mode),
                    info.st_mtime,
                    directory=True,
                )
            )
            for file_name in sorted(files):
                path = base / file_name
                if stat.S_ISREG(os.lstat(path).st_mode):
                    found.append(_file_member(source, path, prefix))
    return found


def _file_member(source: Path, path: Path, prefix: str) -> Member:
    info = os.lstat(path)
    return Member(
        f"{prefix}/{path.relative_to(source).as_posix()}",
        stat.S_IMODE(info.st_mode),
        info.st_mtime,
        info.st_size,
        path=path,
    )


def directory_size(source: Path) -> int:
    return sum(member.size for member in members_of(source))


class _ArchiveSink:
    """The compressed stream's destination: hashed, written, pushed to disk early."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.digest = hashlib.sha256()
        self.count = 0
        self._kicked = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        self.count += len(data)
        if self.count - self._kicked >= WRITEBACK_BYTES and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(self.fd, self._kicked, self.count - self._kicked, os.POSIX_FADV_DONTNEED)
            self._kicked = self.count
        return len(data)

    def flush(self) -> None:
        pass


def pack_members(
    members: list[Member],
    archive: Path,
    *,
    progress: ProgressCallback | None = None,
    level: int = ZSTD_LEVEL,
    threads: int = ZSTD_THREADS,
) -> PackResult:
    """Write ``members`` plus ``SHA256SUMS`` into a new tar.zst file ``archive``, fsynced.

    One Python thread reads, frames the tar stream and hashes; zstd's own worker threads compress
    (C threads: they never wait for the GIL, which a loaded machine makes slow to come back). A
    frame ends every ``FRAME_BYTES`` of tar stream, so restore and verify can decompress one frame
    while they hash and write the previous one. The tar stream is framed here rather than by
    ``tarfile``'s writer, whose stream buffer copies every byte twice: headers come from
    ``TarInfo.tobuf`` (POSIX pax format).

    Raises:
        BackupCorruptionError: a file changed size while it was read.
    """
    total = sum(member.size for member in members)
    tracker = ProgressTracker(progress, "pack", total)
    hasher = InlineMemberHasher()
    owner = (os.getuid(), os.getgid())
    names: list[str] = []
    compressor = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True)
    try:
        fd = os.open(archive, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            sink = _ArchiveSink(fd)
            with compressor.stream_writer(sink, closefd=False, write_size=WRITE_BYTES) as compressed:  # type: ignore[arg-type]
                stream = _TarStream(compressed)
                for member in members:
                    stream.add(member.header(owner))
                    if member.directory:
                        continue
                    hasher.begin(member.name)
                    if member.content is not None:
                        hasher.update(member.content)
                        stream.add(member.content)
                    else:
                        stream.add_file(member, hasher, tracker)
                    stream.add(bytes(_padding(member.size)))
                    names.append(member.name)
                digests = hasher.finish()
                listing = format_sums([(name, digests[name]) for name in names]).encode("utf-8")
                entry = tarfile.TarInfo(SUMS_NAME)
                entry.size, entry.mode = len(listing), 0o644
                entry.mtime = int(members[0].mtime) if members else 0
                entry.uid, entry.gid = owner
                stream.add(
                    entry.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
                    + listing
                    + bytes(_padding(len(listing)) + 2 * tarfile.BLOCKSIZE)
                )
                # The end-of-archive marker, padded to a whole record as tar writes it.
                stream.add(bytes((-stream.written) % tarfile.RECORDSIZE))
            fsio.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise map_os_error(exc, f"writing backup archive {archive}") from exc
    tracker.finish()
    return PackResult(sink.digest.hexdigest(), sink.count, total, len(names))


class _TarStream:
    """The tar stream into the compressor, a new zstd frame every ``FRAME_BYTES``."""

    def __init__(self, compressed: zstandard.ZstdCompressionWriter) -> None:
        self._compressed = compressed
        self._in_frame = 0
        self.written = 0

    def add(self, data: bytes | memoryview) -> None:
        self._compressed.write(data)
        self._count(len(data))

    def add_file(self, member: Member, hasher: InlineMemberHasher, tracker: ProgressTracker) -> None:
        assert member.path is not None
        with open(member.path, "rb", buffering=0) as handle:
            remaining = member.size
            while remaining:
                chunk = handle.read(min(remaining, READ_BYTES))
                if not chunk:
                    raise BackupCorruptionError(
                        f"{member.path} shrank while it was being packed", file=str(member.path)
                    )
                hasher.update(chunk)
                self.add(chunk)
                remaining -= len(chunk)
                tracker.advance(len(chunk))

    def _count(self, size: int) -> None:
        self.written += size
        self._in_frame += size
        if self._in_frame >= FRAME_BYTES:
            self._compressed.flush(zstandard.FLUSH_FRAME)
            self._in_frame = 0


def _padding(size: int) -> int:
    return (-size) % tarfile.BLOCKSIZE
