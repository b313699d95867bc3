"""A file system that forgets, at a simulated power cut, everything not made durable.

The model of RocksDB's ``FaultInjectionTestFS`` and Jepsen's LazyFS, for the calls of
``engines.fsio``. Durable state is kept per inode:

* a file's durable content is what it held at its last fsync/fdatasync (empty if it was never
  synced), plus the ranges written since with ``pwrite_dsync`` (``RWF_DSYNC`` syncs only them);
* a directory's durable entries are what it listed at its last directory fsync, so a create, a
  rename in or out, or an unlink is durable only once the directory holding it is fsynced.

Writes need no interception: at each sync the file's content is read back through a descriptor
this model holds, which is exactly "what was written since the last sync is now durable". Holding
one descriptor per known inode also keeps inode numbers from being reused while the model runs.

``torn_seed``: instead of forgetting every write since a file's last sync, keep part of them
(seeded): a random half of the 4 KiB blocks overwritten inside the synced length, in any order,
and a prefix of what was appended, cut at any byte. (Appended data reaching the disk with a hole
before it is not modelled: the WAL's tolerate-torn-tail recovery, like RocksDB's, refuses that.)
This is what catches a missing sync *between* two writes of one file (cow pages before meta):
without it the later sync would cover both.

``first_block``: the one adversarial subset a random draw finds only by luck: of the blocks
overwritten since the last sync, only the first (lowest offset) reached the disk, and nothing
appended did. For a file whose header is written last (cow's meta pages at offset 0, after the
pages they point at), this is "the header landed, what it points at did not".

``cut_at=k`` cuts the power just before the k-th sync call (1-based): the durable image is taken
then, and every later sync is ignored. ``power_cycle()`` then wipes ``root`` and writes the image
back, which is what a machine finds after rebooting. Everything outside ``root`` is out of the
model (syncs there are ignored). ``live`` names subtrees of ``root`` whose files are written by
code outside the engines' reach (rocksdict's own files): the image takes them as the OS holds
them at the cut, i.e. with the semantics of a killed process, not of a power cut.
"""

from __future__ import annotations

import os
import random
import shutil
import stat
import sys
import threading
from collections import Counter
from pathlib import Path

from engines import fsio

Image = dict[str, bytes | None | tuple[str, str]]  # relpath -> content | None (a dir) | ("link", target)

BLOCK = 4096
_HELPER_FILES = ("engines/fsio.py", "engines/fsutil.py", "powerloss/faultfs.py")
_REPO = str(Path(__file__).resolve().parents[2]) + os.sep


class _Node:
    __slots__ = ("fd", "durable")

    def __init__(self, fd: int, durable: object) -> None:
        self.fd = fd
        self.durable = durable  # bytes (file), dict[str, int] (dir), str (symlink) or None: never synced


class PowerCutFS(fsio.FileSystem):
    def __init__(
        self,
        root: Path,
        *,
        cut_at: int | None = None,
        noop_sites: frozenset[str] | str = frozenset(),
        live: tuple[str, ...] = (),
        torn_seed: int | None = None,
        first_block: bool = False,
    ):
        self.root = Path(root).resolve()
        self.torn = random.Random(torn_seed) if torn_seed is not None else None
        self.first_block = first_block
        self.live = live
        self.cut_at = cut_at
        self.noop_sites = noop_sites  # "*" turns every sync into a no-op
        self.calls = 0
        self.sites: Counter[str] = Counter()
        self.image: Image | None = None
        self.cut_site: str | None = None
        self._lock = threading.RLock()
        self._nodes: dict[int, _Node] = {}
        self._root_ino = self._adopt_tree(self.root)

    # -- fsio.FileSystem -----------------------------------------------------------------------

    def fsync(self, fd: int, site: str | None) -> None:
        self._sync_fd(fd, site, "fsync")

    def fdatasync(self, fd: int, site: str | None) -> None:
        self._sync_fd(fd, site, "fdatasync")

    def pwrite_dsync(self, fd: int, data: bytes | bytearray | memoryview, offset: int, site: str | None) -> int:
        """``RWF_DSYNC`` makes the written range durable (and the size), not the rest of the file."""
        written = os.pwrite(fd, data, offset)
        with self._lock:
            if not self._counts(site, "pwrite_dsync"):
                return written
            node = self._fd_node(fd)
            if node is not None:
                before = node.durable if isinstance(node.durable, bytes) else b""
                end = offset + written
                node.durable = before[:offset].ljust(offset, b"\0") + bytes(data[:written]) + before[end:]
        return written

    def fsync_dir(self, path: fsio.StrPath, site: str | None) -> None:
        with self._lock:
            if not self._counts(site, "fsync_dir"):
                return
            directory = Path(path).resolve()
            if not directory.is_relative_to(self.root):
                return
            self._sync_dir(directory)

    # -- the power cut -------------------------------------------------------------------------

    @property
    def cut(self) -> bool:
        return self.image is not None

    def cut_now(self) -> None:
        """Cut the power at this instant (a cut between two sync calls)."""
        with self._lock:
            if self.image is None:
                self.image = self._materialise()

    def power_cycle(self) -> None:
        """Replace ``root``'s content by the durable image (cutting now if no cut happened yet)."""
        self.cut_now()
        assert self.image is not None
        for child in list(self.root.iterdir()):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        for relpath in sorted(self.image, key=lambda p: p.count("/")):
            content, target = self.image[relpath], self.root / relpath
            if content is None:
                target.mkdir(exist_ok=True)
            elif isinstance(content, tuple):
                target.symlink_to(content[1])
            else:
                target.write_bytes(content)
        self.release()

    def release(self) -> None:
        with self._lock:
            for node in self._nodes.values():
                os.close(node.fd)
            self._nodes.clear()

    # -- internals -----------------------------------------------------------------------------

    def _counts(self, site: str | None, kind: str) -> bool:
        """Count the call; True when it makes something durable (not cut, not a no-op'd site)."""
        name = site_name(site, kind)
        self.sites[name] += 1
        if self.image is not None:
            return False
        self.calls += 1
        if self.cut_at is not None and self.calls >= self.cut_at:
            self.cut_site = name
            self.image = self._materialise()
            return False
        return not (self.noop_sites == "*" or name in self.noop_sites)

    def _sync_fd(self, fd: int, site: str | None, kind: str) -> None:
        with self._lock:
            if not self._counts(site, kind):
                return
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                self._sync_dir(Path(os.readlink(f"/proc/self/fd/{fd}")))
                return
            node = self._fd_node(fd)
            if node is not None:
                node.durable = _read_all(node.fd)

    def _fd_node(self, fd: int) -> _Node | None:
        """The node of the file open as ``fd``; None outside ``root``."""
        try:
            path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            return None
        if not path.is_relative_to(self.root):
            return None
        return self._node(os.fstat(fd).st_ino, path, is_dir=False)

    def _sync_dir(self, directory: Path) -> None:
        node = self._node(directory.stat().st_ino, directory, is_dir=True)
        entries = {}
        for name in os.listdir(directory):
            child = directory / name
            try:
                info = os.lstat(child)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode):
                self._node(info.st_ino, child, is_dir=stat.S_ISDIR(info.st_mode))
            elif stat.S_ISLNK(info.st_mode):
                self._nodes.setdefault(info.st_ino, _Node(os.open(directory, os.O_RDONLY), os.readlink(child)))
            else:
                continue
            entries[name] = info.st_ino
        node.durable = entries

    def _node(self, ino: int, path: Path, *, is_dir: bool) -> _Node:
        node = self._nodes.get(ino)
        if node is None:
            flags = os.O_RDONLY | (os.O_DIRECTORY if is_dir else 0)
            node = self._nodes[ino] = _Node(os.open(path, flags), None)
        return node

    def _adopt_tree(self, root: Path) -> int:
        """Everything already under ``root`` when the model starts is durable."""
        for folder, _dirs, files in os.walk(root, topdown=False):
            for name in files:
                path = Path(folder) / name
                info = os.lstat(path)
                if stat.S_ISREG(info.st_mode):
                    self._node(info.st_ino, path, is_dir=False).durable = path.read_bytes()
            self._sync_dir(Path(folder))
        return root.stat().st_ino

    def _materialise(self) -> Image:
        image: Image = {}

        def walk(ino: int, prefix: str) -> None:
            entries = self._nodes[ino].durable or {}
            assert isinstance(entries, dict)
            for name, child in entries.items():
                relpath, durable = prefix + name, self._nodes[child].durable
                if isinstance(durable, dict) or (durable is None and _is_dir_fd(self._nodes[child].fd)):
                    image[relpath] = None
                    walk(child, relpath + "/")
                elif isinstance(durable, str):
                    image[relpath] = ("link", durable)
                else:
                    image[relpath] = self._file_image(
                        self._nodes[child].fd, durable if isinstance(durable, bytes) else b""
                    )

        walk(self._root_ino, "")
        for relpath in self.live:
            for stale in [path for path in image if path == relpath or path.startswith(relpath + "/")]:
                del image[stale]
            _copy_live(self.root, relpath, image)
        return image

    def _file_image(self, fd: int, synced: bytes) -> bytes:
        if self.torn is None and not self.first_block:
            return synced
        now = _read_all(fd)
        if now == synced:
            return synced
        if self.first_block:
            for start in range(0, min(len(synced), len(now)), BLOCK):
                if now[start : start + BLOCK] != synced[start : start + BLOCK]:
                    end = min(start + BLOCK, len(synced), len(now))
                    return synced[:start] + now[start:end] + synced[end:]
            return synced
        assert self.torn is not None
        # Overwrites inside the synced length: any subset of the changed blocks reached the disk.
        result = bytearray(synced)
        for start in range(0, min(len(synced), len(now)), BLOCK):
            if now[start : start + BLOCK] != synced[start : start + BLOCK] and self.torn.random() < 0.5:
                end = min(start + BLOCK, len(synced), len(now))
                result[start:end] = now[start:end]
        # Appends: a prefix of them, cut anywhere (a torn last record); a truncate: either size.
        if len(now) > len(synced):
            result += now[len(synced) : self.torn.randint(len(synced), len(now))]
        elif len(now) < len(synced) and self.torn.random() < 0.5:
            del result[len(now) :]
        return bytes(result)


def site_name(site: str | None, kind: str) -> str:
    """``site`` if given, else the first caller outside the fsio helpers: ``file:line function``."""
    if site is not None:
        return f"{site} [{kind}]"
    frame = sys._getframe(2)
    helper = None
    while frame is not None and frame.f_code.co_filename.endswith(_HELPER_FILES):
        if frame.f_code.co_filename.endswith("engines/fsutil.py"):
            helper = f"{frame.f_code.co_name}:{frame.f_lineno}"  # the outermost helper frame wins
        frame = frame.f_back
    if frame is None:
        return f"? [{kind}]"
    filename = frame.f_code.co_filename.removeprefix(_REPO)
    via = f" via {helper}" if helper else ""
    return f"{filename}:{frame.f_lineno} {frame.f_code.co_name}{via} [{kind}]"


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    chunks, offset = [], 0
    while offset < size:
        chunk = os.pread(fd, size - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _is_dir_fd(fd: int) -> bool:
    return stat.S_ISDIR(os.fstat(fd).st_mode)


def _copy_live(root: Path, relpath: str, image: Image) -> None:
    """What a killed process leaves of ``root/relpath``: the bytes the OS holds now (lock files aside)."""
    top = root / relpath
    parent = relpath.rpartition("/")[0]
    if not top.is_dir() or (parent and parent not in image):
        return  # a subtree whose directory did not survive the cut did not either
    image[relpath] = None
    for folder, dirs, files in os.walk(top):
        base = Path(folder).relative_to(root).as_posix()
        for name in dirs:
            image[f"{base}/{name}"] = None
        for name in files:
            if name in ("LOCK", "drconsole.lock"):
                continue
            try:
                image[f"{base}/{name}"] = (Path(folder) / name).read_bytes()
            except FileNotFoundError:
                continue  # retired while we copied: a killed process would not see it either
