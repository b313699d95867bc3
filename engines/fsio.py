"""The one door every durability-relevant file-system call of the engines goes through.

LevelDB's ``Env`` and RocksDB's ``FileSystem`` play this part there: the engines call
``fsio.fsync``, ``fsio.fdatasync``, ``fsio.pwrite_dsync``, ``fsio.fsync_dir``, ``fsio.replace`` and
``fsio.rename`` instead of ``os.*``, so a test can install a file system that models a power cut
(tests/powerloss/faultfs.py forgets every write not yet fsynced and every rename or create whose
directory was not fsynced). The default is a pass-through: one module-global lookup and one
method call on top of the system call it wraps.

Opens, writes and mkdirs are not routed: the power-cut model reads each file back through its
own descriptor when it is synced and lists each directory when it is fsynced, so what was
written or created in between needs no interception.

``site`` names the call site for the fault-injecting file system (its mutation check turns one
site at a time into a no-op). When it is None the fault file system names the site after the
caller's module and function; the pass-through ignores it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

__all__ = [
    "FileSystem",
    "current",
    "fdatasync",
    "fsync",
    "fsync_dir",
    "install",
    "pwrite_dsync",
    "rename",
    "replace",
]

StrPath = Union[str, "os.PathLike[str]"]


class FileSystem:
    """The real file system: every method is the system call it is named for."""

    def fsync(self, fd: int, site: str | None) -> None:
        os.fsync(fd)

    def fdatasync(self, fd: int, site: str | None) -> None:
        os.fdatasync(fd)

    def pwrite_dsync(self, fd: int, data: bytes | bytearray | memoryview, offset: int, site: str | None) -> int:
        """``pwritev(RWF_DSYNC)``: write at ``offset`` and make that range durable in one call."""
        return os.pwritev(fd, [data], offset, os.RWF_DSYNC)

    def fsync_dir(self, path: StrPath, site: str | None) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def replace(self, source: StrPath, target: StrPath) -> None:
        os.replace(source, target)

    def rename(self, source: StrPath, target: StrPath) -> None:
        os.rename(source, target)


_active: FileSystem = FileSystem()


def install(fs: FileSystem) -> FileSystem:
    """Make ``fs`` the file system of every engine in this process; return the previous one."""
    global _active
    previous, _active = _active, fs
    return previous


def current() -> FileSystem:
    return _active


def fsync(fd: int, site: str | None = None) -> None:
    _active.fsync(fd, site)


def fdatasync(fd: int, site: str | None = None) -> None:
    _active.fdatasync(fd, site)


def pwrite_dsync(fd: int, data: bytes | bytearray | memoryview, offset: int, site: str | None = None) -> int:
    return _active.pwrite_dsync(fd, data, offset, site)


def fsync_dir(path: StrPath | Path, site: str | None = None) -> None:
    """Make the creates, renames and unlinks inside directory ``path`` durable."""
    _active.fsync_dir(path, site)


def replace(source: StrPath | Path, target: StrPath | Path) -> None:
    _active.replace(source, target)


def rename(source: StrPath | Path, target: StrPath | Path) -> None:
    _active.rename(source, target)
