"""The archive format of a full backup: a POSIX tar stream compressed with zstd, and how it is written.

Standard formats, so a backup outlives the tool: ``tar --zstd -xf`` (or ``zstd -dc | tar -x``)
unpacks it and ``sha256sum -c`` checks it. Inside the archive::

    data/...            the data directory, ready to open
    SHA256SUMS          the SHA-256 of every file under data/, the last member

The archive itself is covered by the ``SHA256SUMS`` beside it. The zstd stream is a sequence of
independent frames of at most 32 MB of tar stream, each with its content size and checksum
(``frames.py``): they are compressed on every core at once, and read back the same way
(``unpack.py``). Packing reads every file once, straight into the buffer zstd compresses, and
hashes it there.
"""

from __future__ import annotations

import hashlib
import os
import queue
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import zstandard

from engines.backup.checksums import SUMS_NAME, format_sums
from engines.backup.errors import BackupCorruptionError
from engines.backup.frames import FRAME_BYTES, OrderedPool, worker_count
from engines.backup.hashing import InlineMemberHasher
from engines.backup.progress import ProgressCallback, ProgressTracker
from engines.errors import map_os_error

__all__ = ["DATA_PREFIX", "ZSTD_LEVEL", "Member", "PackResult", "members_of", "pack_members", "directory_size"]

DATA_PREFIX = "data"
ZSTD_LEVEL = 3
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
            found.append(Member(prefix if rel == "." else f"{prefix}/{rel}", stat.S_IMODE(info.st_mode),
                                info.st_mtime, directory=True))
            for file_name in sorted(files):
                path = base / file_name
                if stat.S_ISREG(os.lstat(path).st_mode):
                    found.append(_file_member(source, path, prefix))
    return found


def _file_member(source: Path, path: Path, prefix: str) -> Member:
    info = os.lstat(path)
    return Member(f"{prefix}/{path.relative_to(source).as_posix()}", stat.S_IMODE(info.st_mode), info.st_mtime,
                  info.st_size, path=path)


def directory_size(source: Path) -> int:
    return sum(member.size for member in members_of(source))


class _Packer:
    """The tar stream cut into frames: filled here, compressed on the pool, written here in order.

    The tar stream is laid out straight into ``FRAME_BYTES`` buffers (files are read into them
    with ``readinto``, member bytes hashed there), so no byte is copied on its way to zstd; each
    full buffer becomes one frame, compressed on a worker while this thread fills the next. There
    are one more buffer than workers, reused: a worker hands its buffer back when its frame is
    done. Frames are written in order as they come back: hashed (the archive's SHA-256), written,
    and pushed to disk early so the final fsync waits for the last stretch only.
    """

    def __init__(self, fd: int, level: int, workers: int, frame_bytes: int) -> None:
        self.fd = fd
        self.digest = hashlib.sha256()
        self.count = 0  # compressed bytes written
        self.written = 0  # tar bytes laid out
        self._kicked = 0
        self._frame_bytes = frame_bytes
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        for _ in range(workers + 1):
            self._free.put(bytearray(frame_bytes))
        self._pool: OrderedPool[tuple[bytearray, int], bytes] = OrderedPool(
            self._compress, lambda: zstandard.ZstdCompressor(level=level, write_checksum=True), workers, "zstd")
        self._block = self._free.get()
        self._view = memoryview(self._block)
        self._fill = 0

    def _compress(self, job: tuple[bytearray, int], compressor: zstandard.ZstdCompressor) -> bytes:
        block, length = job
        try:
            with memoryview(block) as view:
                return compressor.compress(view[:length])
        finally:
            self._free.put(block)

    def add(self, data: bytes) -> None:
        """Copy ``data`` (headers, padding, bytes held in memory) into the stream."""
        done = 0
        while done < len(data):
            take = min(len(data) - done, self._frame_bytes - self._fill)
            self._view[self._fill:self._fill + take] = data[done:done + take]
            self._fill += take
            done += take
            self._advance(take)

    def add_file(self, member: Member, hasher: InlineMemberHasher, tracker: ProgressTracker) -> None:
        """Read ``member``'s bytes straight into the stream, hashing them there."""
        assert member.path is not None
        with open(member.path, "rb", buffering=0) as handle:
            remaining = member.size
            while remaining:
                room = min(remaining, self._frame_bytes - self._fill)
                piece = self._view[self._fill:self._fill + room]
                got = handle.readinto(piece) or 0
                if not got:
                    raise BackupCorruptionError(f"{member.path} shrank while it was being packed",
                                                file=str(member.path))
                hasher.update(piece[:got])
                self._fill += got
                remaining -= got
                tracker.advance(got)
                self._advance(got)

    def _advance(self, size: int) -> None:
        self.written += size
        if self._fill == self._frame_bytes:
            self._submit()

    def _submit(self) -> None:
        if not self._fill:
            return
        self._view.release()
        self._pool.submit((self._block, self._fill))
        while self._pool.ready():
            self._write(self._pool.pop())
        while True:
            try:
                self._block = self._free.get_nowait()
                break
            except queue.Empty:
                self._write(self._pool.pop())  # the oldest frame's worker hands its buffer back
        self._view = memoryview(self._block)
        self._fill = 0

    def finish(self) -> None:
        """Compress what is left and write every frame."""
        self._submit()
        while len(self._pool):
            self._write(self._pool.pop())

    def close(self) -> None:
        self._view.release()
        self._pool.close()

    def _write(self, frame: bytes) -> None:
        self.digest.update(frame)
        with memoryview(frame) as view:
            while view:
                view = view[os.write(self.fd, view):]
        self.count += len(frame)
        if self.count - self._kicked >= WRITEBACK_BYTES and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(self.fd, self._kicked, self.count - self._kicked, os.POSIX_FADV_DONTNEED)
            self._kicked = self.count


def pack_members(members: list[Member], archive: Path, *, progress: ProgressCallback | None = None,
                 level: int = ZSTD_LEVEL, threads: int | None = None) -> PackResult:
    """Write ``members`` plus ``SHA256SUMS`` into a new tar.zst file ``archive``, fsynced.

    This thread reads the files and hashes them; ``threads`` workers (default: one per core)
    compress whole frames at once (``frames.py``). The tar stream is laid out here rather than by
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
    try:
        fd = os.open(archive, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            stream = _Packer(fd, level, threads or worker_count(), FRAME_BYTES)
            try:
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
                stream.add(entry.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape") + listing
                           + bytes(_padding(len(listing)) + 2 * tarfile.BLOCKSIZE))
                # The end-of-archive marker, padded to a whole record as tar writes it.
                stream.add(bytes((-stream.written) % tarfile.RECORDSIZE))
                stream.finish()
            finally:
                stream.close()
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise map_os_error(exc, f"writing backup archive {archive}") from exc
    tracker.finish()
    return PackResult(stream.digest.hexdigest(), stream.count, total, len(names))


def _padding(size: int) -> int:
    return (-size) % tarfile.BLOCKSIZE
