"""The data dir lock: one ``flock`` on ``<data-dir>/drconsole.lock``, shared by every room.

An open read-write engine holds it for its lifetime; offline repairs (cow, lsm) and the WAL
truncation hold it for their duration, so none of them runs under a live engine.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engines.errors import LockedError, map_os_error

__all__ = ["LOCK_NAME", "SERVING_MARKER_NAME", "acquire_data_dir_lock", "data_dir_locked", "is_data_dir_locked"]

LOCK_NAME = "drconsole.lock"
# The file a node that serves a data dir leaves in it (playbooks/agent/marker.py writes it): a
# command that finds none needs not ask whether a node would do the work for it.
SERVING_MARKER_NAME = "node-agent.json"


def acquire_data_dir_lock(data_dir: Path, *, hint: str) -> int:
    """Take the lock without waiting; return its file descriptor (close it to release)."""
    try:
        fd = os.open(Path(data_dir) / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise map_os_error(exc, f"locking {data_dir}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise LockedError(f"{data_dir} is in use by another process", hint=hint) from exc
    return fd


@contextmanager
def data_dir_locked(data_dir: Path, *, hint: str = "stop the node that holds it first") -> Iterator[None]:
    """Hold the data dir's lock for the duration of a ``with`` block."""
    fd = acquire_data_dir_lock(data_dir, hint=hint)
    try:
        yield
    finally:
        os.close(fd)


def is_data_dir_locked(data_dir: Path) -> bool:
    """Whether another process holds the lock of ``data_dir``; creates no lock file.

    Opened read-only: flock needs no write access, so a responder who may only read the data dir
    can still tell whether a process holds it.
    """
    try:
        fd = os.open(Path(data_dir) / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False
