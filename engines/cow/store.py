"""Opening a COW file: read both metas, pick the newest valid one, load its freelist, make the tree."""

from __future__ import annotations

import os
from pathlib import Path

from engines.cow.config import CowSettings
from engines.cow.meta import MetaSlots, read_meta_slots
from engines.cow.pagefile import PageFile
from engines.cow.tree import CowTree
from engines.errors import map_os_error

__all__ = ["open_tree"]


def open_tree(
    path: Path, settings: CowSettings, *, writable: bool, name: str | None = None, check_page_size: bool = True
) -> tuple[CowTree, MetaSlots]:
    """Open the COW file at ``path``; read-only opens never write a byte.

    ``name`` is how errors name the file (relative to the data dir). With ``check_page_size``
    the file's page size must be ``settings.page_size``.

    Raises:
        NotFoundError: no such file.
        UnsupportedFormatError: not a COW file, or a page size mismatch.
        PageCorruptionError: both metas corrupt, the file truncated, or (writable) the freelist
            unreadable.
    """
    path = Path(path)
    name = name or path.name
    try:
        fd = os.open(path, os.O_RDWR if writable else os.O_RDONLY)
    except OSError as exc:
        raise map_os_error(exc, f"opening {path}") from exc
    try:
        slots = read_meta_slots(fd, name, settings.page_size if check_page_size else None)
        file = PageFile(fd, path, slots.page_size, writable=writable, name=name)
        meta = slots.newest
        if writable:
            freelist, span = file.read_freelist(meta)
            tree = CowTree(file, meta, settings, freelist=freelist, freelist_span=span)
        else:
            tree = CowTree(file, meta, settings)
    except BaseException:
        os.close(fd)
        raise
    return tree, slots
