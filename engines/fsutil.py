"""File-system primitives every room shares: atomic replace, directory fsync, quarantine.

Safety rules 1 and 3 of DESIGN.md live here so that no backend re-implements them: nothing a
recovery discards is deleted (it moves under ``<data-dir>/.quarantine/<ts>-<label>/``), and files
are replaced by temp + fsync + rename + directory fsync.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from pathlib import Path

from engines import fsio
from engines.errors import map_os_error

__all__ = [
    "QUARANTINE_DIR",
    "atomic_write_bytes",
    "atomic_write_text",
    "fsync_dir",
    "fsync_file",
    "mkdir_durable",
    "new_quarantine",
    "move_to_quarantine",
    "tree_size",
    "utc_stamp",
]

QUARANTINE_DIR = ".quarantine"


def utc_stamp() -> str:
    """A sortable UTC timestamp for file names: 20261123T140501Z-123456 (microseconds avoid clashes)."""
    now = time.time()
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)) + f"-{int(now * 1e6) % 1_000_000:06d}"


def fsync_dir(path: Path, site: str | None = None) -> None:
    """Make a rename or create inside ``path`` durable."""
    fsio.fsync_dir(path, site)


def start_writeback(fd: int, offset: int = 0, length: int = 0) -> None:
    """Start writing a file's dirty pages out (``length`` 0: to its end), without waiting for them.

    Linux's ``POSIX_FADV_DONTNEED`` starts the writeback of dirty pages and drops only the clean
    ones, so what was just written stays cached. Only a hint: a later fsync is what makes the
    bytes durable, so a refusal is ignored.
    """
    if hasattr(os, "posix_fadvise"):
        try:
            os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass


def fsync_file(path: Path, site: str | None = None) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        fsio.fsync(fd, site)
    finally:
        os.close(fd)


def mkdir_durable(path: Path) -> None:
    """``mkdir -p`` whose result survives a power cut: each directory it creates is fsynced into its parent.

    A quarantine folder made by plain ``mkdir`` is a name no directory fsync covers: a file
    renamed into it, once its old directory is fsynced by later work, has no durable name at all.
    """
    path = Path(path)
    missing = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)
        fsync_dir(folder.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file, never a mix."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            fsio.fsync(handle.fileno())
        fsio.replace(temp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        if temp.exists():
            temp.unlink()  # our own partial temp file, never user data
        raise map_os_error(exc, f"writing {path}") from exc


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def new_quarantine(data_dir: Path, label: str) -> Path:
    """Create and return a fresh quarantine folder under ``data_dir``."""
    target = Path(data_dir) / QUARANTINE_DIR / f"{utc_stamp()}-{label}"
    mkdir_durable(target.parent)
    target.mkdir()  # a clash raises FileExistsError: a fresh folder, never someone's
    fsync_dir(target.parent)
    return target


def move_to_quarantine(paths: list[Path], quarantine: Path, *, base: Path | None = None) -> list[Path]:
    """Move ``paths`` into ``quarantine`` (keeping their path relative to ``base``); return new paths.

    Never overwrites: a name already taken gets a ``.1``, ``.2``, ... suffix. Within one file
    system this is a rename; across file systems the copy is fsynced before the source goes.
    """
    moved = []
    for source in paths:
        source = Path(source)
        relative = source.relative_to(base) if base is not None else Path(source.name)
        target = _free_name(quarantine / relative)
        mkdir_durable(target.parent)
        try:
            fsio.rename(source, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise map_os_error(exc, f"moving {source} to quarantine") from exc
            _durable_copy(source, target)
            if source.is_dir():
                shutil.rmtree(source)  # the fsynced copy is in quarantine: this is a move
            else:
                source.unlink()  # the fsynced copy is in quarantine: this is a move
        fsync_dir(target.parent)
        fsync_dir(source.parent)  # else a power cut can bring the moved file back where it was
        moved.append(target)
    return moved


def _free_name(target: Path) -> Path:
    candidate, number = target, 0
    while candidate.exists() or candidate.is_symlink():
        number += 1
        candidate = target.with_name(f"{target.name}.{number}")
    return candidate


def _durable_copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True)
        for root, _dirs, files in os.walk(target):
            for name in files:
                fsync_file(Path(root) / name)
            fsync_dir(Path(root))
    else:
        shutil.copy2(source, target)
        fsync_file(target)


def tree_size(path: Path) -> int:
    """Bytes used by the regular files under ``path`` (0 when it does not exist)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue  # removed while we walked (compaction, WAL recycling)
    return total
