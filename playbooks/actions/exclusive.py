"""Holding a data dir's engine lock while an action works on its files without opening the engine.

Repair, WAL truncation and the safety copy work on the files directly; holding the same lock an
open engine holds keeps a node (or another run) from writing underneath them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engines.locking import data_dir_locked

__all__ = ["exclusive"]


@contextmanager
def exclusive(data_dir: Path, what: str) -> Iterator[None]:
    with data_dir_locked(
        Path(data_dir), hint=f"cannot {what}: stop the node that holds it (or wait for the other run), then resume"
    ):
        yield
