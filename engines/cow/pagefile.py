"""Reading and writing page runs of ``data.cow``, with every check a read can make.

Every read goes through ``read_run``: the page must be inside the pages in use, its header must
name it, and the checksum must match; anything else raises ``PageCorruptionError`` naming the file
and the page, so a damaged page is never decoded into wrong data.
"""

from __future__ import annotations

import os
from pathlib import Path

from engines import fsio
from engines.cow.freelist import Freelist, decode_freelist
from engines.cow.meta import Meta, encode_meta
from engines.cow.node import Branch, Leaf, OverflowRef, decode_branch, decode_leaf
from engines.cow.page import HEADER, HEADER_SIZE, PageCorruptionError, PageType, verify_checksum
from engines.errors import map_os_error

__all__ = ["PageFile"]

_NODE_TYPES = (PageType.BRANCH, PageType.LEAF)


class PageFile:
    """Page I/O on the open file descriptor of a COW file (it owns the descriptor)."""

    def __init__(self, fd: int, path: Path, page_size: int, *, writable: bool, name: str | None = None) -> None:
        self.fd = fd
        self.path = Path(path)
        self.name = name or self.path.name
        self.page_size = page_size
        self.writable = writable
        self.bytes_written = 0
        self.pages_read = 0

    # ------------------------------------------------------------------ reading
    def read_run(self, page: int, hwm: int, kinds: tuple[PageType, ...]) -> bytes:
        """The whole run starting at ``page``, checked. ``hwm``: pages in use."""
        size = self.page_size
        if not 2 <= page < hwm:
            raise self._corrupt(page, f"a reference points to page {page}, outside the {hwm} pages in use", "reference")
        try:
            buffer = os.pread(self.fd, size, page * size)
        except OSError as exc:
            raise map_os_error(exc, f"reading page {page} of {self.path}") from exc
        self.pages_read += 1
        if len(buffer) < size:
            raise self._corrupt(page, "the page is cut short (file truncated)", "truncated")
        _checksum, kind, _flags, _reserved, page_id, overflow, _count, _txid = HEADER.unpack_from(buffer)
        if overflow:
            if page + 1 + overflow > hwm:
                if not verify_checksum(buffer):
                    raise self._corrupt(page, "checksum mismatch")
                raise self._corrupt(
                    page, f"a run of {overflow + 1} pages would pass the {hwm} pages in use", "page-header"
                )
            try:
                buffer = os.pread(self.fd, size * (overflow + 1), page * size)
            except OSError as exc:
                raise map_os_error(exc, f"reading page {page} of {self.path}") from exc
            if len(buffer) < size * (overflow + 1):
                raise self._corrupt(page, "the run is cut short (file truncated)", "truncated")
            self.pages_read += overflow
        if not verify_checksum(buffer):
            raise self._corrupt(page, "checksum mismatch")
        if page_id != page:
            raise self._corrupt(page, f"the header names page {page_id} (a misdirected write)", "page-header")
        if kind not in kinds:
            names = "/".join(PageType(k).name.lower() for k in kinds)
            raise self._corrupt(page, f"a {_kind_name(kind)} page where a {names} page was expected", "page-header")
        return buffer

    def read_node(self, page: int, hwm: int) -> Leaf | Branch:
        buffer = self.read_run(page, hwm, _NODE_TYPES)
        try:
            if buffer[4] == PageType.LEAF:
                return decode_leaf(buffer, page, self.page_size)
            return decode_branch(buffer, page)
        except (ValueError, OverflowError) as exc:  # struct errors are ValueError subclasses
            raise self._corrupt(page, f"malformed {_kind_name(buffer[4])} page: {exc}", "structure") from exc

    def read_overflow(self, ref: OverflowRef, hwm: int) -> bytes:
        buffer = self.read_run(ref.page, hwm, (PageType.OVERFLOW,))
        _checksum, _kind, _flags, _reserved, _page, overflow, length, _txid = HEADER.unpack_from(buffer)
        if length != ref.length or overflow + 1 != ref.span:
            raise self._corrupt(
                ref.page,
                f"overflow run holds {length} bytes in {overflow + 1} pages, "
                f"the leaf expects {ref.length} bytes in {ref.span}",
                "overflow",
            )
        return buffer[HEADER_SIZE : HEADER_SIZE + length]

    def read_freelist(self, meta: Meta) -> tuple[Freelist, int]:
        """The freelist of ``meta`` and the number of pages its own run takes."""
        if not meta.freelist:
            return Freelist(), 0
        buffer = self.read_run(meta.freelist, meta.hwm, (PageType.FREELIST,))
        _checksum, _kind, _flags, _reserved, _page, overflow, count, _txid = HEADER.unpack_from(buffer)
        try:
            rows = decode_freelist(buffer, count)
        except (ValueError, OverflowError) as exc:
            raise self._corrupt(meta.freelist, f"malformed freelist page: {exc}", "freelist") from exc
        free: list[int] = []
        pending: dict[int, list[int]] = {}
        for start, length, txid in rows:
            if start < 2 or start + length > meta.hwm:
                raise self._corrupt(
                    meta.freelist,
                    f"freelist extent {start}+{length} is outside the {meta.hwm} pages in use",
                    "freelist",
                )
            pages = range(start, start + length)
            if txid:
                pending.setdefault(txid, []).extend(pages)
            else:
                free.extend(pages)
        return Freelist(free, pending), overflow + 1

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    # ------------------------------------------------------------------ writing
    def write_runs(self, runs: list[tuple[int, bytearray]]) -> None:
        """Write sealed runs at their pages; neighbours go out in one call."""
        size = self.page_size
        runs.sort(key=lambda item: item[0])
        index = 0
        try:
            while index < len(runs):
                first, buffer = runs[index]
                group = [buffer]
                end = first + len(buffer) // size
                index += 1
                while index < len(runs) and runs[index][0] == end and len(group) < 256:
                    group.append(runs[index][1])
                    end += len(runs[index][1]) // size
                    index += 1
                data = group[0] if len(group) == 1 else b"".join(group)
                written = os.pwrite(self.fd, data, first * size)
                while written < len(data):  # short writes are legal; finish them
                    written += os.pwrite(self.fd, memoryview(data)[written:], first * size + written)
                self.bytes_written += len(data)
        except OSError as exc:
            raise map_os_error(exc, f"writing pages of {self.path}") from exc

    def write_meta(self, meta: Meta) -> None:
        page = encode_meta(meta)
        try:
            os.pwrite(self.fd, page, meta.slot * self.page_size)
        except OSError as exc:
            raise map_os_error(exc, f"writing meta page {meta.slot} of {self.path}") from exc
        self.bytes_written += len(page)

    def sync(self, site: str | None = None) -> None:
        try:
            fsio.fdatasync(self.fd, site)
        except OSError as exc:
            raise map_os_error(exc, f"syncing {self.path}") from exc

    def truncate(self, pages: int) -> None:
        try:
            os.ftruncate(self.fd, pages * self.page_size)
        except OSError as exc:
            raise map_os_error(exc, f"truncating {self.path}") from exc

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _corrupt(self, page: int, reason: str, kind: str = "checksum") -> PageCorruptionError:
        return PageCorruptionError(f"{self.name} page {page}: {reason}", file=self.name, page=page, kind=kind)


def _kind_name(kind: int) -> str:
    try:
        return PageType(kind).name.lower()
    except ValueError:
        return f"unknown-type-{kind}"
