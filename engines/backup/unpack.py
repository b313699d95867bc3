"""Reading a backup archive back: decompress, walk the tar stream, hash, and (restore) write the files.

One pass over the archive does everything ``zstd -t``, ``sha256sum`` and ``tar -x`` would do in
three processes, spread over the cores instead:

* this thread has zstd read the compressed file and decompress it into a few reused 1 MB buffers
  (zstd releases the GIL), then walks the tar headers and slices member bytes out of each buffer
  without copying them; a buffer goes back to the pool once its bytes are written (``_Buffers``);
* a thread hashes the compressed bytes (the archive's SHA-256, against the ``SHA256SUMS`` beside
  it), and zstd checks each frame's content checksum; in a backup of format 1, whose archive ends
  with a ``SHA256SUMS`` of its files (``member_sums``), the members are hashed against it too, a
  whole member each, by two more threads and by this one; hashlib releases the GIL;
* when extracting, a thread writes the pieces, given a batch per decompressed piece, and a few
  more start each complete file's writeback and fsync it once the writing is over.

The tar walk is our own (headers parsed by ``tarfile.TarInfo.frombuf``, pax records by hand):
``tarfile``'s stream mode re-buffers every byte in small pieces, which cost more than the zstd
decompression it waits for. It accepts what a POSIX tar writes for regular files and directories
(ustar, pax, GNU long names); anything else (links, devices) is reported, never extracted.
"""

from __future__ import annotations

import os
import queue
import tarfile
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

import zstandard

from engines import fsio
from engines.backup.checksums import SUMS_NAME, parse_sums
from engines.backup.hashing import HASH_THREADS, Digest, MemberHasher
from engines.backup.pack import DATA_PREFIX
from engines.backup.progress import ProgressCallback, ProgressTracker
from engines.backup.zstd_frames import FrameWalk
from engines.errors import map_os_error
from engines.fsutil import fsync_dir, start_writeback

__all__ = ["ArchiveCheck", "read_archive", "restored_mode"]

# Decompressed bytes per piece: small enough that the piece is written (or hashed) while still in
# the CPU cache, large enough that an archive is not handed between the threads in thousands of
# small pieces, each a few GIL handovers. Restoring a 250 MB lsm dir (2 cores, whole command,
# medians of 6), by piece: 256 KB 0.27 s, 512 KB 0.26 s, 1 MB 0.26 s, 2 MB 0.27 s. Reads of the
# archive: 1 MB, against 256 KB, take 0.34 s instead of 0.35 s where the rows do not compress
# (archive 222 MB), and the same at 20x.
OUT_BYTES = 1 << 20
READ_BYTES = 1 << 20  # compressed bytes per read of the archive
# Buffers in flight: pieces queued for the writer (or the archive hasher) hold theirs until done;
# the reader waits for one to come back rather than allocate.
OUT_BUFFERS = 8
READ_BUFFERS = 8
# Members of a format 1 archive are hashed on HASH_THREADS threads and by this thread too, which
# gets a member when its load counted INLINE_WEIGHT times is the least (it decompresses and walks
# the stream besides): it hashes what it has just decompressed, still in its cache (hashing.MemberHasher). On 2 cores,
# best of 3 (verify / extract, s): 250 MB lsm, 20x: 0.161 / 0.357 with threads only, 0.151 / 0.205
# so; lsm of incompressible rows 0.224 / 0.280 and 0.210 / 0.282; cow 0.143 / 0.293 and 0.145 / 0.258.
HASH_LANES = HASH_THREADS
INLINE_WEIGHT = 3.0
_BLOCK = tarfile.BLOCKSIZE
_QUEUE_DEPTH = 16
HELD_FILES = 256  # restored files written and waiting for their fsync (_FileWriter._sync_loop)
# Threads that fsync restored files: fsyncs at once share ext4's journal commits. 10,000 files
# written, then fsynced: 0.6 s on one thread, 0.33 s on four, 0.15 s on sixteen; restoring 20,000
# files of 4 KB, 3.2-3.4 s on one, 2.1-2.3 s on four (8 threads no better); 250 MB dirs: the same.
SYNC_THREADS = 4


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


class _FileWriter:
    """Writes extracted files in a thread, in the order given, and fsyncs them in SYNC_THREADS others.

    Hashing (a format 1 archive's members) is not done here but by the member hashers beside
    it: hashing and writing each piece in one thread made that thread the slowest stage of a
    restore (the SHA-256 alone is as long as the decompression), and a loaded machine gives a
    process's threads their share each, so three threads each with less to do finish sooner
    than two. A failure in a helper is raised to the caller at its next call, or by ``finish``.
    """

    def __init__(self) -> None:
        # The caller's operations go over in batches, one per decompressed piece: an item for each
        # open, write and close was three queue handovers between two threads per file (a data dir
        # of 20,000 small files took 600,000 futex calls).
        self._writes: queue.Queue[list[tuple[Any, ...]] | None] = queue.Queue(maxsize=_QUEUE_DEPTH)
        self._batch: list[tuple[Any, ...]] = []
        self._syncs: queue.Queue[list[int] | None] = queue.Queue()
        # Restored files open at once (written, held for their fsync, or on their way to it): the
        # writer waits rather than open more (a data dir of thousands must not run out of descriptors).
        self._open_files = threading.BoundedSemaphore(2 * HELD_FILES)
        self._error: BaseException | None = None
        self._durable = True
        self._finished = False
        self._writer = threading.Thread(target=self._write_loop, name="restore-writer", daemon=True)
        self._syncers = [
            threading.Thread(target=self._sync_loop, name=f"restore-fsync-{n}", daemon=True)
            for n in range(SYNC_THREADS)
        ]
        self._writer.start()
        for syncer in self._syncers:
            syncer.start()

    def mkdir(self, path: Path) -> None:
        self._put(("mkdir", path))

    def open(self, path: Path, mode: int, mtime: float) -> None:
        self._put(("open", path, mode, mtime))

    def update(self, chunk: Any) -> None:
        self._put(("data", chunk))

    def close(self) -> None:
        self._put(("close",))

    def then(self, call: Callable[[], None]) -> None:
        """Hand over what was given so far; ``call`` runs in the writer once it is written (to reuse a buffer)."""
        self._batch.append(("then", call))  # even after a failure: the writer drains, and calls it
        self._writes.put(self._batch)
        self._batch = []

    def finish(self, *, durable: bool) -> None:
        """Wait for every file to be written (and fsynced when ``durable``); raise a helper's error."""
        if self._finished:
            return
        self._finished = True
        self._durable = durable
        if self._batch:
            self._writes.put(self._batch)
        self._writes.put(None)
        self._writer.join()
        for _ in self._syncers:
            self._syncs.put(None)
        for syncer in self._syncers:
            syncer.join()
        if self._error is not None and durable:
            raise self._error

    def _put(self, item: tuple[Any, ...]) -> None:
        if self._error is not None:
            raise self._error
        self._batch.append(item)

    def _write_loop(self) -> None:
        fd: int | None = None
        mode, mtime = 0o644, 0.0
        made: set[Path] = set()  # directories known to exist: no mkdir for each file in them
        closed: list[int] = []  # files written, for the fsync thread
        while (batch := self._writes.get()) is not None:
            for item in batch:
                kind = item[0]
                if kind == "then":
                    item[1]()
                    continue
                if self._error is not None:
                    continue  # drain, so the producer never blocks
                try:
                    if kind == "data":
                        view = memoryview(item[1])
                        while view:
                            view = view[os.write(fd, view) :]  # type: ignore[arg-type]
                    elif kind == "open":
                        path, mode, mtime = item[1], item[2], item[3]
                        if path.parent not in made:
                            path.parent.mkdir(parents=True, exist_ok=True)
                            made.add(path.parent)
                        if not self._open_files.acquire(blocking=False):
                            self._hand_over(closed)  # the fsync thread frees descriptors only once it has them
                            self._open_files.acquire()
                        try:
                            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                        except BaseException:
                            self._open_files.release()
                            raise
                    elif kind == "close":
                        assert fd is not None
                        closed.append(fd)  # first: the fsync threads close it even if what follows fails
                        fd = None
                        os.fchmod(closed[-1], mode)
                        os.utime(closed[-1], (mtime, mtime))
                    elif kind == "mkdir":
                        if item[1] not in made:
                            item[1].mkdir(parents=True, exist_ok=True)
                            made.add(item[1])
                except BaseException as exc:  # noqa: BLE001 - handed to the producer
                    self._error = exc
                    if fd is not None:
                        os.close(fd)
                        self._open_files.release()
                        fd = None
            self._hand_over(closed)
        if fd is not None:
            os.close(fd)
            self._open_files.release()

    def _hand_over(self, closed: list[int]) -> None:
        if closed:
            self._syncs.put(closed[:])
            closed.clear()

    def _sync_loop(self) -> None:
        """Start each complete file's writeback at once; fsync it once the writing is over.

        On ext4 an fsync commits the journal, and the writes of the next file wait for that
        commit: with an fsync after each file, 4 restores in 15 took over 0.55 s (250 MB lsm dir,
        2 cores, shared disk: 0.25-0.78 s, median 0.31); so, none (0.23-0.54 s, median 0.25).
        The writeback started early leaves the fsyncs at the end little to wait for. At most
        HELD_FILES wait, split between the SYNC_THREADS threads: past its share, a thread fsyncs
        its oldest.
        """
        held: deque[int] = deque()
        while (closed := self._syncs.get()) is not None:
            for fd in closed:
                if self._error is None:
                    start_writeback(fd)
                held.append(fd)
            while len(held) > max(1, HELD_FILES // SYNC_THREADS):
                self._sync_close(held.popleft())
        while held:
            self._sync_close(held.popleft())

    def _sync_close(self, fd: int) -> None:
        try:
            if self._durable and self._error is None:
                fsio.fsync(fd)
        except OSError as exc:
            self._error = self._error or exc
        finally:
            os.close(fd)
            self._open_files.release()


class _Damaged(Exception):
    """The tar stream does not parse."""


class _Buffers:
    """A few buffers handed round: taken by the reader, given back by the last thread to use one.

    A new ``bytes`` for each decompressed piece (zstd's ``decompressobj``) cost a restore of a
    250 MB lsm dir 17,000-31,000 minor page faults, every piece on fresh pages the kernel zeroes,
    and a system time that went from 0.1 s to 0.6 s with the machine's load (0.30-0.75 s whole,
    tar + zstd 0.42-0.46 s); decompressed into 8 reused buffers, read from 8 more, ~9,800 faults
    (a command that reads nothing takes 3,500) and 0.25-0.30 s over 9 rounds of the bench.
    With ``reuse`` off each take is a new buffer: for pieces the member hashers of a format 1
    archive hold in their queues, with no moment known at which all of them are done.
    """

    def __init__(self, count: int, size: int, *, reuse: bool = True) -> None:
        self.size = size
        self._reuse = reuse
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        for _ in range(count if reuse else 0):
            self._free.put(bytearray(size))

    def take(self) -> bytearray:
        return self._free.get() if self._reuse else bytearray(self.size)

    def give(self, buffer: bytearray) -> None:
        if self._reuse:
            self._free.put(buffer)


class _Source:
    """The archive file as zstd's reader reads it: each chunk hashed, counted and followed through its frames.

    zstd asks for the next chunk only once it has used up the last one (``read`` is called when
    its input is empty), so a chunk's buffer goes back to the pool when the archive hasher is done
    with it too.
    """

    def __init__(self, raw: Any, whole: Digest, tracker: ProgressTracker) -> None:
        self.raw, self.whole, self.tracker = raw, whole, tracker
        self.bytes_read = 0
        self.frames = FrameWalk()
        self._buffers = _Buffers(READ_BUFFERS, READ_BYTES)
        self._lent: bytearray | None = None

    def read(self, size: int) -> memoryview:  # size: READ_BYTES, as asked of zstd's reader
        if self._lent is not None:
            self.whole.then(partial(self._buffers.give, self._lent))
        buffer = self._lent = self._buffers.take()
        view = memoryview(buffer)[: self.raw.readinto(buffer)]
        self.whole.update(view)
        self.frames.feed(view)
        self.bytes_read += len(view)
        self.tracker.advance(len(view))
        return view


def _pax_records(data: bytes) -> dict[str, str]:
    """``<length> <key>=<value>\\n`` records of a pax extended header."""
    records: dict[str, str] = {}
    position = 0
    while position < len(data) and data[position : position + 1] not in (b"\0", b""):
        space = data.find(b" ", position)
        if space < 0:
            raise _Damaged("a pax record has no length")
        length = int(data[position:space])
        record = data[space + 1 : position + length]
        if length <= 0 or not record.endswith(b"\n") or b"=" not in record:
            raise _Damaged("a pax record is malformed")
        key, _, value = record[:-1].partition(b"=")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        position += length
    return records


def restored_mode(archived: int) -> int:
    """The mode a restored file gets: 0644, or 0755 when the archive had an execute bit.

    Never the archive's own bits: a crafted backup must not plant setuid, setgid, sticky or
    world-writable files in a data dir (issue 18).
    """
    return 0o755 if archived & 0o111 else 0o644


def _safe_member_path(name: str) -> PurePosixPath | None:
    """The path under ``data/`` of a member, or None if it is not one (absolute, ``..``, outside)."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or path.parts[0] != DATA_PREFIX:
        return None
    return PurePosixPath(*path.parts[1:]) if len(path.parts) > 1 else PurePosixPath(".")


class _TarWalk:
    """Walks a tar stream fed in arbitrary chunks; member bytes go out as views of those chunks."""

    def __init__(
        self,
        check: ArchiveCheck,
        label: str,
        extract_to: Path | None,
        writer: _FileWriter | None,
        hasher: MemberHasher | None,
    ) -> None:
        self.check, self.label = check, label
        self.extract_to, self.writer, self.hasher = extract_to, writer, hasher
        self.listed: list[tuple[str, str]] | None = None
        self.member = ""  # the member whose bytes come next (names the file a damaged stream hit)
        self.ended = False
        self._header = bytearray()
        self._need = _BLOCK  # bytes wanted for the current header or special member
        self._special: str | None = None  # "pax", "longname", "sums", or None (header)
        self._special_data = bytearray()
        self._remaining = 0  # member bytes left to hand out
        self._padding = 0  # zero bytes after the member
        self._extracting = False
        self._pending: dict[str, str] = {}  # pax/GNU overrides for the next member
        self._seen: set[PurePosixPath] = set()
        self._zero_blocks = 0
        self._special_size = 0

    def feed(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            if self._remaining:
                take = min(self._remaining, len(view))
                piece = view[:take]
                if self.hasher is not None:
                    self.hasher.update(piece)
                if self._extracting:
                    self.writer.update(piece)  # type: ignore[union-attr]
                self._remaining -= take
                view = view[take:]
                if not self._remaining:
                    self._end_member()
                continue
            if self._padding:
                take = min(self._padding, len(view))
                self._padding -= take
                view = view[take:]
                continue
            take = min(self._need - len(self._header), len(view))
            self._header += view[:take]
            view = view[take:]
            if len(self._header) == self._need:
                block, self._header = bytes(self._header), bytearray()
                self._need = _BLOCK
                if self._special is None:
                    self._on_header(block)
                else:
                    self._on_special(block)

    def _on_header(self, block: bytes) -> None:
        if self.ended:
            if block.strip(b"\0"):
                raise _Damaged("data after the end-of-archive blocks")
            return
        if not block.strip(b"\0"):
            self._zero_blocks += 1
            self.ended = self._zero_blocks >= 2
            return
        if self._zero_blocks:
            raise _Damaged("a zero block in the middle of the archive")
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise _Damaged(f"bad tar header: {exc}") from exc
        kind = info.type
        if kind in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.SOLARIS_XHDTYPE):
            self._special = (
                "longname" if kind == tarfile.GNUTYPE_LONGNAME else ("global" if kind == tarfile.XGLTYPE else "pax")
            )
            self._need = info.size + (-info.size) % _BLOCK
            self._special_size = info.size
            if self._need == 0:
                self._on_special(b"")
            return
        name = self._pending.pop("path", info.name)
        size = int(self._pending.pop("size", info.size))
        mtime = float(self._pending.pop("mtime", info.mtime))
        self._pending.clear()
        if name == SUMS_NAME and info.isfile() and self.hasher is not None:
            self._special, self._special_size = "sums", size
            self._need = size + (-size) % _BLOCK
            if self._need == 0:
                self._on_special(b"")
            return
        relative = _safe_member_path(name)
        if relative is None or not (info.isfile() or info.isdir()):
            self.check.problems.append((f"{self.label}:{name}", "unexpected member"))
            self._skip(size)
            return
        encoded = str(relative).encode("utf-8", "surrogateescape")
        if len(encoded) >= 4000 or any(len(part) > 255 for part in encoded.split(b"/")):
            raise _Damaged(f"member {name[:80]}... has a name longer than a file name can be")
        target = None if self.extract_to is None else self.extract_to / relative
        if info.isdir():
            if self.writer is not None and target is not None:
                self.writer.mkdir(target)
            return
        if relative in self._seen:  # a second copy would overwrite (or, exclusive, fail on) the first
            raise _Damaged(f"member {name} appears twice")
        self._seen.add(relative)
        self.member = name
        if self.hasher is not None:
            self.hasher.begin(name, size)
        self._extracting = self.writer is not None and target is not None
        if self._extracting:
            assert self.writer is not None and target is not None
            self.writer.open(target, restored_mode(info.mode), mtime)
        self.check.file_count += 1
        self.check.data_bytes += size
        self._remaining, self._padding = size, (-size) % _BLOCK
        if not size:
            self._end_member()

    def _skip(self, size: int) -> None:
        """Pass over a member we do not take, without hashing or writing it."""
        self._padding = size + (-size) % _BLOCK

    def _end_member(self) -> None:
        self.member = ""
        if self._extracting:
            assert self.writer is not None
            self.writer.close()
        self._extracting = False

    def _on_special(self, block: bytes) -> None:
        special, self._special = self._special, None
        data = block[: self._special_size]
        if special == "pax":
            self._pending.update(_pax_records(data))
        elif special == "longname":
            self._pending["path"] = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
        elif special == "sums":
            try:
                self.listed = parse_sums(data.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                self.check.problems.append((f"{self.label}:{SUMS_NAME}", f"unreadable: {exc}"))
                self.listed = []


def read_archive(
    archive: Path,
    *,
    extract_to: Path | None = None,
    expected_sha256: str | None = None,
    progress: ProgressCallback | None = None,
    phase: str = "verify",
    member_sums: bool = False,
) -> ArchiveCheck:
    """Read a whole archive: hash it and decompress it (zstd checks its content checksum).

    ``member_sums``: the archive ends with a SHA256SUMS of its files (a backup of format 1),
    which every member is hashed and compared against; without it such a member is unexpected.
    With ``extract_to`` (an existing empty directory) the members under ``data/`` are written
    there and fsynced. Problems are returned, not raised, so verify can report them all; an
    extraction must treat any problem as fatal.
    """
    check = ArchiveCheck()
    label = str(archive)
    try:
        total = archive.stat().st_size
    except OSError as exc:
        check.problems.append((label, f"cannot read the archive: {map_os_error(exc, 'reading').message}"))
        return check
    tracker = ProgressTracker(progress, phase, total)
    writer = _FileWriter() if extract_to is not None else None
    hasher = MemberHasher(HASH_LANES, inline_weight=INLINE_WEIGHT) if member_sums else None
    pieces = _Buffers(OUT_BUFFERS, OUT_BYTES, reuse=hasher is None)
    whole = Digest("archive-hasher")
    walk = _TarWalk(check, label, extract_to, writer, hasher)
    out = 0  # decompressed bytes so far
    source = None
    try:
        with open(archive, "rb", buffering=0) as raw:
            source = _Source(raw, whole, tracker)
            # Frame after frame (pack.py ends one every FRAME_BYTES of tar stream; any .zst may hold
            # several, and skippable frames, which zstd passes over).
            reader = zstandard.ZstdDecompressor().stream_reader(
                source,  # type: ignore[arg-type]  # zstd calls its read() only
                read_size=READ_BYTES,
                read_across_frames=True,
                closefd=False,
            )
            while True:
                piece = pieces.take()
                size = reader.readinto(piece)
                if not size:
                    break
                out += size
                walk.feed(memoryview(piece)[:size])
                if writer is None:
                    pieces.give(piece)  # the walk keeps no view of it, nor (format 2) a hasher
                else:
                    writer.then(partial(pieces.give, piece))
            # zstd's reader ends quietly where its input does (the only end of readinto), even inside a frame.
            if not source.frames.complete:
                raise _Damaged("the last zstd frame is cut short (truncated archive)")
            if not walk.ended:
                raise _Damaged("the tar stream ends without its end-of-archive blocks (truncated)")
        if writer is not None:
            writer.finish(durable=True)
    except zstandard.ZstdError as exc:
        check.problems.append((label, f"zstd decompression failed{_where(exc, out, walk.member)}: {exc}"))
    except _Damaged as exc:
        check.problems.append((label, f"the tar stream is damaged: {exc}"))
    except OSError as exc:
        raise map_os_error(exc, f"reading backup archive {archive}") from exc
    finally:
        if writer is not None:
            writer.finish(durable=False)  # after a failure: stop the helpers, keep nothing durable
        digests = None if hasher is None else hasher.finish()
        check.archive_sha256 = whole.finish()
    tracker.finish()
    check.archive_bytes = 0 if source is None else source.bytes_read
    if expected_sha256 is not None and check.archive_sha256 != expected_sha256:
        check.problems.insert(
            0, (label, f"checksum mismatch: sha256 is {check.archive_sha256}, SHA256SUMS says {expected_sha256}")
        )
    if digests is not None and (check.ok or walk.listed is not None):
        _compare_sums(check, label, digests, walk.listed)
    if extract_to is not None and check.ok:
        _fsync_tree(extract_to)
    return check


def _where(error: zstandard.ZstdError, position: int, member: str) -> str:
    """Where a damaged stream failed to decode, for the message: the member it was in, if any.

    The damage lies at or after that point (a read decompresses to ~1 MB before the walk sees
    it). A content checksum is checked at the end of its frame, so the damage can be anywhere
    before: no member is named then.
    """
    if "checksum" in str(error).lower() or not position:
        return ""  # (or it failed in the first piece read)
    return f" after byte {position} of the tar stream" + (f", in or after {member}" if member else "")


def _compare_sums(
    check: ArchiveCheck, label: str, member_sums: dict[str, str], listed: list[tuple[str, str]] | None
) -> None:
    if listed is None:
        check.problems.append((f"{label}:{SUMS_NAME}", "the archive has no SHA256SUMS member (truncated?)"))
        return
    expected = dict(listed)
    for name, digest in member_sums.items():
        if name not in expected:
            check.problems.append((f"{label}:{name}", "not listed in the archive's SHA256SUMS"))
        elif expected[name] != digest:
            check.problems.append(
                (f"{label}:{name}", f"checksum mismatch: sha256 is {digest}, SHA256SUMS says {expected[name]}")
            )
    for name in expected:
        if name not in member_sums:
            check.problems.append((f"{label}:{name}", "listed in SHA256SUMS but missing from the archive"))


def _fsync_tree(root: Path) -> None:
    for folder, _dirs, _files in os.walk(root, topdown=False):
        fsync_dir(Path(folder))
