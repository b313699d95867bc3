"""The archive format of a full backup: a POSIX tar stream compressed with zstd.

Standard formats, so a backup outlives the tool: ``tar --zstd -xf`` (or ``zstd -dc | tar -x``)
unpacks it and ``sha256sum -c`` checks it. Inside the archive::

    data/...            the checkpoint: the data directory, ready to open
    SHA256SUMS          the SHA-256 of every file under data/, the last member

The archive itself is covered by the ``SHA256SUMS`` beside it. Packing hashes every file as it is
read and the compressed stream as it is written, so a backup is read once; unpacking and testing
hash what they read the same way and compare at the end. zstd frames carry their own checksum,
so damage is caught by decompression too.
"""

from __future__ import annotations

import hashlib
import os
import queue
import stat
import tarfile
import threading
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import zstandard

from engines.backup.checksums import CHUNK_BYTES, SUMS_NAME, format_sums, parse_sums
from engines.backup.errors import BackupCorruptionError
from engines.backup.progress import ProgressCallback, ProgressTracker
from engines.errors import map_os_error
from engines.fsutil import fsync_dir

__all__ = ["DATA_PREFIX", "ZSTD_LEVEL", "PackResult", "ArchiveCheck", "pack_directory", "read_archive", "directory_size"]

DATA_PREFIX = "data"
ZSTD_LEVEL = 3
# Compression runs on every core (zstd's own worker threads, outside the GIL); hashing and tar
# framing run in this thread meanwhile.
ZSTD_THREADS = -1
PACK_CHUNK_BYTES = 1 << 20


@dataclass
class PackResult:
    archive_sha256: str
    archive_bytes: int
    source_bytes: int
    file_count: int


@dataclass
class ArchiveCheck:
    """What reading an archive found. ``problems`` are (file, detail) pairs; empty means sound."""

    archive_sha256: str = ""
    archive_bytes: int = 0
    data_bytes: int = 0
    file_count: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _HashingReader:
    """A file read through SHA-256 (and a progress counter)."""

    def __init__(self, handle: BinaryIO, tracker: ProgressTracker | None) -> None:
        self._handle = handle
        self._tracker = tracker
        self.digest = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size)
        if chunk:
            self.digest.update(chunk)
            self.count += len(chunk)
            if self._tracker is not None:
                self._tracker.advance(len(chunk))
        return chunk


class _HashingWriter:
    """The archive file written through SHA-256."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()
        self.count = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.count += len(data)
        self._handle.write(data)
        return len(data)

    def flush(self) -> None:
        self._handle.flush()


def _walk(source: Path) -> list[tuple[Path, str, os.stat_result]]:
    """Every directory and regular file under ``source``, sorted, as (path, archive name, stat)."""
    found = []
    for root, dirs, files in os.walk(source):
        dirs.sort()
        base = Path(root)
        relative = base.relative_to(source)
        name = DATA_PREFIX if str(relative) == "." else f"{DATA_PREFIX}/{relative.as_posix()}"
        found.append((base, name, os.stat(base)))
        for file_name in sorted(files):
            path = base / file_name
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                found.append((path, f"{name}/{file_name}", info))
    return found


def directory_size(source: Path) -> int:
    return sum(info.st_size for _path, _name, info in _walk(source) if stat.S_ISREG(info.st_mode))


def _tar_info(name: str, info: os.stat_result) -> tarfile.TarInfo:
    entry = tarfile.TarInfo(name)
    entry.mode = stat.S_IMODE(info.st_mode)
    entry.mtime = int(info.st_mtime)
    entry.uid, entry.gid = info.st_uid, info.st_gid
    if stat.S_ISDIR(info.st_mode):
        entry.type = tarfile.DIRTYPE
    else:
        entry.type = tarfile.REGTYPE
        entry.size = info.st_size
    return entry


def pack_directory(source: Path, archive: Path, *, progress: ProgressCallback | None = None,
                   level: int = ZSTD_LEVEL, threads: int = ZSTD_THREADS) -> PackResult:
    """Write ``source`` as ``data/`` plus ``SHA256SUMS`` into a new tar.zst file ``archive``.

    The tar stream is framed here rather than by ``tarfile``'s writer, whose stream buffer copies
    every byte twice: headers come from ``TarInfo.tobuf`` (POSIX pax format), file bytes go
    straight into the compressor (zstd's worker threads) and to the hashing thread.
    """
    entries = _walk(source)
    total = sum(info.st_size for _path, _name, info in entries if stat.S_ISREG(info.st_mode))
    tracker = ProgressTracker(progress, "pack", total)
    compressor = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True)
    hasher = _MemberHasher()
    names: list[str] = []
    try:
        with open(archive, "xb") as raw:
            output = _HashingWriter(raw)
            with compressor.stream_writer(output, closefd=False, write_size=CHUNK_BYTES) as compressed:  # type: ignore[arg-type]
                written = 0
                for path, name, info in entries:
                    entry = _tar_info(name, info)
                    header = entry.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
                    compressed.write(header)
                    written += len(header)
                    if entry.type == tarfile.DIRTYPE:
                        continue
                    hasher.begin(name)
                    with open(path, "rb", buffering=0) as handle:
                        remaining = entry.size
                        while remaining:
                            chunk = handle.read(min(remaining, PACK_CHUNK_BYTES))
                            if not chunk:
                                raise BackupCorruptionError(f"{path} shrank while it was being packed",
                                                            file=str(path))
                            hasher.update(chunk)
                            compressed.write(chunk)
                            remaining -= len(chunk)
                            tracker.advance(len(chunk))
                    written += entry.size + _padding(entry.size)
                    compressed.write(bytes(_padding(entry.size)))
                    names.append(name)
                digests = hasher.finish()
                sums = [(n, digests[n]) for n in names]
                listing = format_sums(sums).encode("utf-8")
                entry = tarfile.TarInfo(SUMS_NAME)
                entry.size, entry.mode, entry.mtime = len(listing), 0o644, int(entries[0][2].st_mtime)
                header = entry.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
                written += len(header) + len(listing) + _padding(len(listing)) + 2 * tarfile.BLOCKSIZE
                # The end-of-archive marker, padded to a whole record as tar writes it.
                trailer = bytes(_padding(len(listing)) + 2 * tarfile.BLOCKSIZE + (-written) % tarfile.RECORDSIZE)
                compressed.write(header + listing + trailer)
            raw.flush()
            os.fsync(raw.fileno())
    except OSError as exc:
        raise map_os_error(exc, f"writing backup archive {archive}") from exc
    finally:
        hasher.finish()  # after a failure too: the thread must not wait forever
    tracker.finish()
    return PackResult(output.digest.hexdigest(), output.count, total, len(sums))


def _padding(size: int) -> int:
    return (-size) % tarfile.BLOCKSIZE


def _safe_member_path(name: str) -> PurePosixPath | None:
    """The path under ``data/`` of a member, or None if it is not one (absolute, ``..``, outside)."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or path.parts[0] != DATA_PREFIX:
        return None
    return PurePosixPath(*path.parts[1:]) if len(path.parts) > 1 else PurePosixPath(".")


def read_archive(archive: Path, *, extract_to: Path | None = None, expected_sha256: str | None = None,
                 progress: ProgressCallback | None = None, phase: str = "verify") -> ArchiveCheck:
    """Read a whole archive: hash it, decompress it, hash every member, compare with SHA256SUMS.

    With ``extract_to`` (an existing empty directory) the members under ``data/`` are written
    there and fsynced. This thread decompresses; helper threads hash the members
    (``_MemberHasher``) and write and fsync them (``_FileWriter``). Problems are returned, not raised, so verify can report them all; an extraction must
    treat any problem as fatal.
    """
    check = ArchiveCheck()
    label = str(archive)
    try:
        total = archive.stat().st_size
    except OSError as exc:
        check.problems.append((label, f"cannot read the archive: {map_os_error(exc, 'reading').message}"))
        return check
    tracker = ProgressTracker(progress, phase, total)
    listed: list[tuple[str, str]] | None = None
    writer = _FileWriter() if extract_to is not None else None
    hasher = _MemberHasher()
    try:
        with open(archive, "rb", buffering=0) as raw:
            source = _HashingReader(raw, tracker)
            decompressor = zstandard.ZstdDecompressor()
            with decompressor.stream_reader(source, read_size=CHUNK_BYTES, closefd=False) as stream:  # type: ignore[arg-type]
                with tarfile.open(fileobj=stream, mode="r|", bufsize=CHUNK_BYTES) as tar:
                    for member in tar:
                        if member.name == SUMS_NAME and member.isfile():
                            content = tar.extractfile(member)
                            assert content is not None
                            try:
                                listed = parse_sums(content.read().decode("utf-8"))
                            except (ValueError, UnicodeDecodeError) as exc:
                                check.problems.append((f"{label}:{SUMS_NAME}", f"unreadable: {exc}"))
                                listed = []
                            continue
                        relative = _safe_member_path(member.name)
                        if relative is None or not (member.isfile() or member.isdir()):
                            check.problems.append((f"{label}:{member.name}", "unexpected member"))
                            continue
                        target = None if extract_to is None else extract_to / relative
                        if member.isdir():
                            if writer is not None and target is not None:
                                writer.mkdir(target)
                            continue
                        _copy_member(tar, member, target, writer, hasher)
                        check.file_count += 1
                        check.data_bytes += member.size
                # tarfile stops at the end-of-archive blocks; the zstd frame must end right after.
                while stream.read(CHUNK_BYTES):
                    pass
            while source.read(CHUNK_BYTES):
                pass  # trailing bytes after the frame are damage too; hash them all
        if writer is not None:
            writer.finish(durable=True)
    except zstandard.ZstdError as exc:
        check.problems.append((label, f"zstd decompression failed: {exc}"))
    except (tarfile.TarError, EOFError) as exc:
        check.problems.append((label, f"the tar stream is damaged: {exc}"))
    except OSError as exc:
        raise map_os_error(exc, f"reading backup archive {archive}") from exc
    finally:
        member_sums = hasher.finish()
        if writer is not None:
            writer.finish(durable=False)  # after a failure: stop the helpers, keep nothing durable
    tracker.finish()
    check.archive_sha256 = source.digest.hexdigest()
    check.archive_bytes = source.count
    if expected_sha256 is not None and check.archive_sha256 != expected_sha256:
        check.problems.insert(0, (label, f"checksum mismatch: sha256 is {check.archive_sha256}, "
                                         f"SHA256SUMS says {expected_sha256}"))
    if check.ok or listed is not None:
        _compare_sums(check, label, member_sums, listed)
    if extract_to is not None and check.ok:
        _fsync_tree(extract_to)
    return check


def _copy_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path | None,
                 writer: _FileWriter | None, hasher: _MemberHasher) -> None:
    content = tar.extractfile(member)
    assert content is not None
    hasher.begin(member.name)
    if target is not None and writer is not None:
        writer.open(target, member.mode & 0o7777, member.mtime)
    while chunk := content.read(CHUNK_BYTES):
        hasher.update(chunk)
        if writer is not None:
            writer.write(chunk)
    if writer is not None:
        writer.close()


class _MemberHasher:
    """The SHA-256 of each member, computed in a thread beside the decompression.

    hashlib releases the GIL on large buffers, so hashing and decompressing run on two cores at
    once (as ``zstd -t`` and ``sha256sum`` would in two processes).
    """

    def __init__(self) -> None:
        self.digests: dict[str, str] = {}
        self._items: queue.Queue[tuple[str, Any] | None] = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._run, name="member-hasher", daemon=True)
        self._thread.start()

    def begin(self, name: str) -> None:
        self._items.put(("begin", name))

    def update(self, chunk: bytes) -> None:
        self._items.put(("data", chunk))

    def finish(self) -> dict[str, str]:
        """Wait for the hashing to catch up; the digests by member name. Later calls just return them."""
        if self._thread.is_alive():
            self._items.put(None)
            self._thread.join()
        return self.digests

    def _run(self) -> None:
        name, digest = "", hashlib.sha256()
        while (item := self._items.get()) is not None:
            if item[0] == "data":
                digest.update(item[1])
                continue
            if name:
                self.digests[name] = digest.hexdigest()
            name, digest = item[1], hashlib.sha256()
        if name:
            self.digests[name] = digest.hexdigest()


class _FileWriter:
    """Writes extracted files in a thread and fsyncs them in another, in the order given.

    Decompressing and hashing (this thread), writing (the kernel copying into the page cache)
    and waiting for the disk overlap, as ``zstd -d | tar -x`` overlaps two processes. A failure
    in a helper is raised to the caller at its next call, or by ``finish``.
    """

    def __init__(self) -> None:
        self._writes: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=32)
        self._syncs: queue.Queue[int | None] = queue.Queue()
        self._error: BaseException | None = None
        self._durable = True
        self._finished = False
        self._writer = threading.Thread(target=self._write_loop, name="restore-writer", daemon=True)
        self._syncer = threading.Thread(target=self._sync_loop, name="restore-fsync", daemon=True)
        self._writer.start()
        self._syncer.start()

    def mkdir(self, path: Path) -> None:
        self._put(("mkdir", path))

    def open(self, path: Path, mode: int, mtime: float) -> None:
        self._put(("open", path, mode, mtime))

    def write(self, chunk: bytes) -> None:
        self._put(("data", chunk))

    def close(self) -> None:
        self._put(("close",))

    def finish(self, *, durable: bool) -> None:
        """Wait for every file to be written (and fsynced when ``durable``); raise a helper's error.

        Only the first call does anything.
        """
        if self._finished:
            return
        self._finished = True
        self._durable = durable
        self._writes.put(None)
        self._writer.join()
        self._syncs.put(None)
        self._syncer.join()
        if self._error is not None and durable:
            raise self._error

    def _put(self, item: tuple[Any, ...]) -> None:
        if self._error is not None:
            raise self._error
        self._writes.put(item)

    def _write_loop(self) -> None:
        fd: int | None = None
        mode, mtime = 0o644, 0.0
        while (item := self._writes.get()) is not None:
            if self._error is not None:
                continue  # drain, so the producer never blocks
            try:
                kind = item[0]
                if kind == "data":
                    view = memoryview(item[1])
                    while view:
                        view = view[os.write(fd, view):]  # type: ignore[arg-type]
                elif kind == "open":
                    path, mode, mtime = item[1], item[2], item[3]
                    path.parent.mkdir(parents=True, exist_ok=True)
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                elif kind == "close":
                    assert fd is not None
                    os.fchmod(fd, mode)
                    os.utime(fd, (mtime, mtime))
                    self._syncs.put(fd)
                    fd = None
                elif kind == "mkdir":
                    item[1].mkdir(parents=True, exist_ok=True)
            except BaseException as exc:  # noqa: BLE001 - handed to the producer
                self._error = exc
                if fd is not None:
                    os.close(fd)
                    fd = None
        if fd is not None:
            os.close(fd)

    def _sync_loop(self) -> None:
        while (fd := self._syncs.get()) is not None:
            try:
                if self._durable and self._error is None:
                    os.fsync(fd)
            except OSError as exc:
                self._error = self._error or exc
            finally:
                os.close(fd)


def _compare_sums(check: ArchiveCheck, label: str, member_sums: dict[str, str],
                  listed: list[tuple[str, str]] | None) -> None:
    if listed is None:
        check.problems.append((f"{label}:{SUMS_NAME}", "the archive has no SHA256SUMS member (truncated?)"))
        return
    expected = dict(listed)
    for name, digest in member_sums.items():
        if name not in expected:
            check.problems.append((f"{label}:{name}", "not listed in the archive's SHA256SUMS"))
        elif expected[name] != digest:
            check.problems.append((f"{label}:{name}", f"checksum mismatch: sha256 is {digest}, "
                                                      f"SHA256SUMS says {expected[name]}"))
    for name in expected:
        if name not in member_sums:
            check.problems.append((f"{label}:{name}", "listed in SHA256SUMS but missing from the archive"))


def _fsync_tree(root: Path) -> None:
    for folder, _dirs, _files in os.walk(root, topdown=False):
        fsync_dir(Path(folder))
