"""Holding a data dir's engine lock while an action works on its files without opening the engine.

Repair, WAL truncation and the safety copy work on the files directly; holding the same lock an
open engine holds keeps a node (or another run) from writing underneath them.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engines.base import LOCK_NAME
from engines.errors import LockedError, map_os_error

__all__ = ["exclusive"]


@contextmanager
def exclusive(data_dir: Path, what: str) -> Iterator[None]:
    try:
        fd = os.open(Path(data_dir) / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise map_os_error(exc, f"locking {data_dir}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise LockedError(f"{data_dir} is in use by another process; cannot {what}",
                              hint="stop the node that holds it (or wait for the other run), then resume") from exc
        yield
    finally:
        os.close(fd)
