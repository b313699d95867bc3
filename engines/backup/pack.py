"""The archive format of a full backup: a POSIX tar stream compressed with zstd, and how it is written.

Standard formats, so a backup outlives the tool: ``tar --zstd -xf`` (or ``zstd -dc | tar -x``)
unpacks it and ``sha256sum -c`` checks it. Inside the archive, ``data/...``: the data directory,
ready to open.

The archive is covered by the ``SHA256SUMS`` beside it, and its stream by zstd's content
checksum. (Backups of format 1 also carried a ``SHA256SUMS`` of every file as their last member,
``metadata.FORMAT_VERSION``; they are still read.) Packing reads every file once: its bytes go to
the compressor (zstd's worker threads), and the compressed stream to a thread that hashes and
writes the archive. Reading it back is ``unpack.py``.
"""

from __future__ import annotations

import hashlib
import os
import queue
import stat
import tarfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import zstandard

from engines import fsio
from engines.backup.errors import BackupCorruptionError
from engines.backup.progress import ProgressCallback, ProgressTracker
from engines.errors import map_os_error
from engines.fsutil import start_writeback

__all__ = [
    "DATA_PREFIX",
    "ZSTD_LEVEL",
    "ArchiveCopy",
    "Member",
    "PackResult",
    "members_of",
    "pack_members",
    "directory_size",
]

DATA_PREFIX = "data"
ZSTD_LEVEL = 3
# Compression runs on every core (zstd's worker threads).
ZSTD_THREADS = os.cpu_count() or 1
JOB_BYTES = 16 << 20  # tar bytes per zstd job (compressor())
# Pieces read into one buffer, reused (a fresh buffer per read costs a page fault per 4 KB),
# small enough to be copied into zstd while it is in the CPU cache.
READ_BYTES = 256 << 10
WRITE_BYTES = 256 << 10
_SINK_DEPTH = 64  # compressed pieces waiting for the archive writer
# Tar bytes per zstd frame. Ending a frame waits for every zstd job to finish (the reader and the
# workers idle meanwhile), so only rarely; restore and verify read any number of frames.
FRAME_BYTES = 1 << 30
# Start the kernel writing the archive out every this many bytes, so the fsync at the end waits
# for the last stretch only (fsutil.start_writeback).
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


class ArchiveCopy(Protocol):
    """A second destination of the compressed stream (``sftp_stream.ArchiveUpload``)."""

    def write(self, data: bytes) -> None: ...

    def finish(self, size: int, sha256: str) -> bool: ...

    def abort(self) -> None: ...


class _ArchiveSink:
    """The compressed stream's destination: hashed and written by a thread of its own, pushed to disk early.

    zstd hands its output over from the thread that feeds it; writing it there would hold the
    reader up for every ``write`` (and its wait for the disk). A write error is raised at the next
    ``write`` or by ``close``.
    """

    def __init__(self, fd: int, copy: ArchiveCopy | None, durable: bool) -> None:
        self.fd = fd
        self.copy = copy
        self.durable = durable
        self.digest = hashlib.sha256()
        self.count = 0
        self._kicked = 0
        self._error: OSError | None = None
        self._items: queue.Queue[bytes | None] = queue.Queue(maxsize=_SINK_DEPTH)
        self._thread = threading.Thread(target=self._run, name="archive-writer", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> int:
        if self._error is not None:
            raise self._error
        self._items.put(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        """Wait until every byte is written; raise the first write error."""
        if self._thread.is_alive():
            self._items.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (data := self._items.get()) is not None:
            if self._error is not None:
                continue  # drain, so the producer never blocks
            try:
                self._write(data)
            except OSError as exc:
                self._error = exc

    def _write(self, data: bytes) -> None:
        self.digest.update(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]
        self.count += len(data)
        if self.copy is not None:
            self.copy.write(data)
        if self.durable and self.count - self._kicked >= WRITEBACK_BYTES:
            start_writeback(self.fd, self._kicked, self.count - self._kicked)
            self._kicked = self.count


def compressor(threads: int = ZSTD_THREADS) -> zstandard.ZstdCompressor:
    """zstd on ``threads`` worker threads: one standard frame of 16 MB jobs, each seeing a whole window.

    The parameters are level 3's but for the match finder: the "fast" strategy (one hash table,
    the one of level 1) with level 3's table size, a minimum match of 6 and an 8 MB window, not 2 MB.
    zstd's default for multi-threaded level 3 is 8 MB jobs that share a quarter of a window: each
    job starts almost cold and the archive comes out ~20 % larger than a single-threaded one
    (``zstd -T0``, the peer of bench/backup_bench.py); jobs that overlap by a whole window win
    that back. Measured against ``tar | zstd -3 -T2`` on 2 cores (CPU: of level 3 with these
    jobs; size: of the peer's archive)::

        data                              level 3 (our jobs)     these parameters
        250 MB lsm / rocksdb / cow dirs   1.00 CPU, 0.83-0.96    0.54-0.77 CPU, 0.39-0.43 size
        250 MB lsm of incompressible rows 1.00 CPU, 1.002        0.69 CPU, 1.004 size
        /usr/share/doc (125 MB)           1.00 CPU, 0.995        0.75 CPU, 0.934 size
        /usr/lib/x86_64-linux-gnu (711 MB) 1.00 CPU, 0.987       0.80 CPU, 1.019 size

    A database's files repeat themselves at distances of megabytes (rows, pages and blocks
    written from the same sources), which the larger window finds; binaries lose ~2 % against
    the peer. Decompression needs the 8 MB window, far below zstd's default limit (128 MB).
    """
    params = zstandard.ZstdCompressionParameters.from_level(
        ZSTD_LEVEL,
        strategy=zstandard.STRATEGY_FAST,
        window_log=23,
        hash_log=17,
        min_match=6,
        threads=threads,
        job_size=JOB_BYTES if threads > 1 else 0,
        overlap_log=9,
        write_checksum=True,
    )
    return zstandard.ZstdCompressor(compression_params=params)


def pack_members(
    members: list[Member],
    archive: Path,
    *,
    progress: ProgressCallback | None = None,
    threads: int = ZSTD_THREADS,
    copy: ArchiveCopy | None = None,
    durable: bool = True,
) -> PackResult:
    """Write ``members`` into a new tar.zst file ``archive``, fsynced.

    Each file is read once, in pieces, into a buffer that this thread feeds to zstd (whose C
    worker threads compress: they never wait for the GIL). The compressed stream is hashed and
    written by a thread of its own. The tar stream is framed here rather than by ``tarfile``'s
    writer, whose stream buffer copies every byte twice: headers come from ``TarInfo.tobuf``
    (POSIX pax).

    ``copy`` gets every compressed piece too (an upload fed while packing); it is finished once
    the archive is fsynced, aborted when packing fails. ``durable=False``: the archive is a working
    copy's, which the store makes durable where it keeps it (encrypted, or on another host): it is
    neither fsynced nor pushed out of the page cache here, where it is about to be read again.

    Raises:
        BackupCorruptionError: a file changed size while it was read.
    """
    total = sum(member.size for member in members)
    tracker = ProgressTracker(progress, "pack", total)
    buffer = bytearray(READ_BYTES)
    owner = (os.getuid(), os.getgid())
    count = 0
    try:
        fd = os.open(archive, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            sink = _ArchiveSink(fd, copy, durable)
            try:
                writer = compressor(threads).stream_writer
                with writer(sink, closefd=False, write_size=WRITE_BYTES) as compressed:  # type: ignore[arg-type]
                    stream = _TarStream(compressed)
                    for member in members:
                        stream.add(member.header(owner))
                        if member.directory:
                            continue
                        if member.content is not None:
                            stream.add(member.content)
                        else:
                            stream.add_file(member, buffer, tracker)
                        stream.add(bytes(_padding(member.size)))
                        count += 1
                    # The end-of-archive marker, padded to a whole record as tar writes it.
                    stream.add(bytes(2 * tarfile.BLOCKSIZE))
                    stream.add(bytes((-stream.written) % tarfile.RECORDSIZE))
            finally:
                sink.close()
            if durable:
                fsio.fsync(fd)
        finally:
            os.close(fd)
    except BaseException as exc:
        if copy is not None:
            copy.abort()
        if isinstance(exc, OSError):
            raise map_os_error(exc, f"writing backup archive {archive}") from exc
        raise
    tracker.finish()
    digest = sink.digest.hexdigest()
    if copy is not None:
        copy.finish(sink.count, digest)
    return PackResult(digest, sink.count, total, count)


class _TarStream:
    """The tar stream into the compressor, a new zstd frame every ``FRAME_BYTES``."""

    def __init__(self, compressed: zstandard.ZstdCompressionWriter) -> None:
        self._compressed = compressed
        self._in_frame = 0
        self.written = 0

    def add(self, data: bytes | memoryview) -> None:
        self._compressed.write(data)
        self._count(len(data))

    def add_file(self, member: Member, buffer: bytearray, tracker: ProgressTracker) -> None:
        assert member.path is not None
        view = memoryview(buffer)
        with open(member.path, "rb", buffering=0) as handle:
            remaining = member.size
            while remaining:
                count = handle.readinto(view[: min(remaining, len(buffer))])
                if not count:
                    raise BackupCorruptionError(
                        f"{member.path} shrank while it was being packed", file=str(member.path)
                    )
                self.add(view[:count])  # zstd copies the piece before write() returns
                remaining -= count
                tracker.advance(count)

    def _count(self, size: int) -> None:
        self.written += size
        self._in_frame += size
        if self._in_frame >= FRAME_BYTES:
            self._compressed.flush(zstandard.FLUSH_FRAME)
            self._in_frame = 0


def _padding(size: int) -> int:
    return (-size) % tarfile.BLOCKSIZE
