"""Helpers for the COW engine tests: engines with backend options, page surgery, directory hashes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from engines import create_engine
from engines.cow.engine import CowEngine
from engines.cow.meta import read_meta_slots
from engines.cow.page import DATA_FILE, HEADER, PageType

__all__ = ["create_cow", "dir_digest", "flip_byte", "page_size_of", "pages_of_type", "tree_pages", "newest_meta"]


def create_cow(
    path: Path,
    *,
    durability: str = "sync",
    low_memory: bool = False,
    backend: dict[str, Any] | None = None,
    **fields: Any,
) -> CowEngine:
    """A new cow data dir; ``backend`` holds the cow options (``EngineOptions.backend``)."""
    engine = create_engine(
        path, backend="cow", durability=durability, low_memory=low_memory, backend_options=backend, **fields
    )
    assert isinstance(engine, CowEngine)
    return engine


def dir_digest(path: Path) -> dict[str, tuple[int, str]]:
    """Every file and directory under ``path``: (size or -1, sha256). Equal digests: nothing written."""
    found: dict[str, tuple[int, str]] = {}
    for root, dirs, files in os.walk(path):
        for name in dirs:
            found[os.path.relpath(os.path.join(root, name), path) + "/"] = (-1, "")
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as handle:
                found[os.path.relpath(full, path)] = (os.path.getsize(full), hashlib.sha256(handle.read()).hexdigest())
    return found


def page_size_of(data_dir: Path) -> int:
    fd = os.open(data_dir / DATA_FILE, os.O_RDONLY)
    try:
        return read_meta_slots(fd, DATA_FILE, None).page_size
    finally:
        os.close(fd)


def newest_meta(data_dir: Path):  # type: ignore[no-untyped-def]
    fd = os.open(data_dir / DATA_FILE, os.O_RDONLY)
    try:
        return read_meta_slots(fd, DATA_FILE, None, allow_truncated=True).newest
    finally:
        os.close(fd)


def pages_of_type(data_dir: Path, kind: PageType) -> list[int]:
    """Pages whose header says ``kind``, among the pages the newest meta's tree can reach."""
    size = page_size_of(data_dir)
    wanted = []
    with open(data_dir / DATA_FILE, "rb") as handle:
        for page in tree_pages(data_dir):
            handle.seek(page * size)
            header = HEADER.unpack(handle.read(HEADER.size))
            if header[1] == kind:
                wanted.append(page)
    return wanted


def tree_pages(data_dir: Path) -> list[int]:
    """Every page reachable from the newest meta (root, branches, leaves, overflow runs' heads)."""
    from engines.cow.config import CowSettings
    from engines.cow.node import Branch, OverflowRef
    from engines.cow.store import open_tree

    tree, _slots = open_tree(data_dir / DATA_FILE, CowSettings(), writable=False, check_page_size=False)
    try:
        pages = []
        stack = [tree.root]
        while stack:
            page = stack.pop()
            pages.append(page)
            node = tree.file.read_node(page, tree.hwm)
            if isinstance(node, Branch):
                stack.extend(node.children)  # type: ignore[arg-type]
            else:
                pages.extend(value.page for value in node.values if isinstance(value, OverflowRef))
        if tree.meta.freelist:
            pages.append(tree.meta.freelist)
        return pages
    finally:
        tree.close()


def flip_byte(data_dir: Path, page: int, offset: int = 100) -> None:
    """Corrupt one byte inside ``page`` (default: in its body, past the header)."""
    size = page_size_of(data_dir)
    with open(data_dir / DATA_FILE, "r+b") as handle:
        handle.seek(page * size + offset)
        byte = handle.read(1)
        handle.seek(page * size + offset)
        handle.write(bytes([byte[0] ^ 0xFF]))
