"""The two meta pages (0 and 1) and how an open picks the one to trust.

A meta page is a page like any other (checksummed header, type META, page id 0 or 1) whose body
says where the tree is, little endian::

    magic 8s "DRCOWDB\\x01" | format u32 | page_size u32 | root u64 | freelist u64 | hwm u64
    | last_lsn u64 | key_count u64

``txid`` is the header's. A commit writes its pages, fsyncs, then writes the meta into the slot
that does not hold the current meta, and fsyncs again (bbolt and LMDB do the same). On open the
valid meta with the highest txid wins; a torn or corrupt newest meta falls back to the older
one, whose pages no later commit may have reused (see ``freelist.py``).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, replace

from engines.cow.page import (
    HEADER,
    HEADER_SIZE,
    MAX_PAGE_SIZE,
    MIN_PAGE_SIZE,
    PageCorruptionError,
    PageType,
    seal,
    verify_checksum,
)
from engines.errors import UnsupportedFormatError

__all__ = ["FORMAT", "MAGIC", "Meta", "MetaSlots", "decode_meta", "encode_meta", "read_meta_slots"]

MAGIC = b"DRCOWDB\x01"
FORMAT = 1
BODY = struct.Struct("<8sIIQQQQQ")
_PAGE_SIZE_OFFSET = HEADER_SIZE + 12
_CANDIDATE_SIZES = [1 << shift for shift in range(MIN_PAGE_SIZE.bit_length() - 1, MAX_PAGE_SIZE.bit_length())]


@dataclass(frozen=True)
class Meta:
    """One committed state of the tree."""

    txid: int
    root: int
    freelist: int  # first page of the freelist run; 0 when nothing is free
    hwm: int  # pages in use: the file holds at least hwm * page_size bytes
    lsn: int  # the last WAL record this state holds
    key_count: int
    page_size: int
    slot: int = 0  # the page (0 or 1) it was read from or is written to

    def with_slot(self, slot: int) -> Meta:
        return replace(self, slot=slot)


def encode_meta(meta: Meta) -> bytearray:
    """The page that holds ``meta`` in slot ``meta.slot``, sealed."""
    page = bytearray(meta.page_size)
    HEADER.pack_into(page, 0, 0, PageType.META, 0, 0, meta.slot, 0, 0, meta.txid)
    BODY.pack_into(
        page, HEADER_SIZE, MAGIC, FORMAT, meta.page_size, meta.root, meta.freelist, meta.hwm, meta.lsn, meta.key_count
    )
    seal(page)
    return page


def decode_meta(page: bytes, slot: int) -> Meta:
    """The meta in ``page`` (exactly one page long). Raises ValueError saying what is wrong."""
    if len(page) < HEADER_SIZE + BODY.size:
        raise ValueError("the page is cut short")
    _checksum, kind, _flags, _reserved, page_id, _overflow, _count, txid = HEADER.unpack_from(page)
    magic, version, page_size, root, freelist, hwm, lsn, key_count = BODY.unpack_from(page, HEADER_SIZE)
    if magic != MAGIC:
        raise ValueError("bad magic (not a drconsole COW meta page)")
    if not verify_checksum(page):
        raise ValueError("checksum mismatch")
    if kind != PageType.META or page_id != slot:
        raise ValueError(f"header says page {page_id} of type {kind}, expected meta page {slot}")
    if version != FORMAT:
        raise ValueError(f"format version {version} is not {FORMAT}")
    if page_size != len(page):
        raise ValueError(f"records page size {page_size}, read as {len(page)}")
    if not 2 <= root < hwm or freelist >= hwm or (freelist and freelist < 2):
        raise ValueError(f"root {root} / freelist {freelist} outside the {hwm} pages in use")
    return Meta(txid, root, freelist, hwm, lsn, key_count, page_size, slot)


@dataclass
class MetaSlots:
    """Both meta pages as read: the valid ones, and why the others are not."""

    page_size: int
    metas: list[Meta]
    problems: dict[int, str]
    file_size: int

    @property
    def newest(self) -> Meta:
        return max(self.metas, key=lambda meta: meta.txid)

    @property
    def older(self) -> Meta | None:
        return min(self.metas, key=lambda meta: meta.txid) if len(self.metas) == 2 else None


def read_meta_slots(
    fd: int, file_name: str, expected_page_size: int | None, *, allow_truncated: bool = False
) -> MetaSlots:
    """Read and check both meta pages of an open ``data.cow``; nothing is written.

    ``allow_truncated`` (for verify, which reports it itself) skips the file length check.

    Raises:
        UnsupportedFormatError: the file is not a COW file, or its page size is not the
            ``expected_page_size``.
        PageCorruptionError: both metas are corrupt (page 0), or the file is shorter than the
            pages its newest meta says are in use (the first missing page).
    """
    size = os.fstat(fd).st_size
    head = os.pread(fd, HEADER_SIZE + BODY.size, 0)
    problems: dict[int, str] = {}
    metas: list[Meta] = []
    sizes: list[int] = []
    if len(head) == HEADER_SIZE + BODY.size and head[HEADER_SIZE : HEADER_SIZE + 8] == MAGIC:
        (own,) = struct.unpack_from("<I", head, _PAGE_SIZE_OFFSET)
        if own in _CANDIDATE_SIZES:
            sizes.append(own)
    for candidate in [expected_page_size or 0, *_CANDIDATE_SIZES]:
        if candidate and candidate not in sizes:
            sizes.append(candidate)
    magic_seen = False
    slot0: Meta | None = None
    for slot in (0, 1):
        reasons: list[str] = []
        for page_size in sizes if slot0 is None else [slot0.page_size]:
            page = os.pread(fd, page_size, slot * page_size)
            if page[HEADER_SIZE : HEADER_SIZE + 8] == MAGIC:
                magic_seen = True
            try:
                meta = decode_meta(page, slot)
            except ValueError as exc:
                if not reasons or page[HEADER_SIZE : HEADER_SIZE + 8] == MAGIC:
                    reasons.append(str(exc))
                continue
            metas.append(meta)
            slot0 = slot0 or (meta if slot == 0 else None)
            break
        else:
            problems[slot] = reasons[-1] if reasons else "unreadable"
    if not metas:
        if not magic_seen:
            raise UnsupportedFormatError(
                f"{file_name} is not a drconsole COW file (page 0: no COW meta page)"
                if size
                else f"{file_name} is empty: not a drconsole COW file",
                hint="check the data dir; restore it from a backup if the file was overwritten",
            )
        raise PageCorruptionError(
            f"both meta pages of {file_name} are corrupt (page 0: {problems.get(0)}; page 1: {problems.get(1)})",
            file=file_name,
            page=0,
            kind="meta",
            hint="salvage the readable records with `drconsole engine repair`, or restore a backup",
        )
    page_size = metas[0].page_size
    if len(metas) == 2 and metas[1].page_size != page_size:
        raise PageCorruptionError(
            f"the meta pages of {file_name} disagree on the page size ({page_size} and {metas[1].page_size})",
            file=file_name,
            page=1,
            kind="meta",
        )
    if expected_page_size and page_size != expected_page_size:
        raise UnsupportedFormatError(
            f"page size mismatch: {file_name} has {page_size}-byte pages (meta page {metas[0].slot}), "
            f"the options say {expected_page_size}",
            hint="open it with the page_size it was created with (drconsole.json, options.backend.page_size)",
        )
    slots = MetaSlots(page_size, metas, problems, size)
    newest = slots.newest
    if newest.hwm * page_size > size and not allow_truncated:
        first_missing = size // page_size
        raise PageCorruptionError(
            f"{file_name} is truncated: meta page {newest.slot} (txid {newest.txid}) uses {newest.hwm} pages, "
            f"the file holds {size} bytes; page {first_missing} onwards is missing",
            file=file_name,
            page=first_missing,
            kind="truncated",
            hint="restore the data dir from a backup, or salvage what is left with `drconsole engine repair`",
        )
    return slots
