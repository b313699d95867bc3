"""The consistency checker: bbolt's ``tx_check`` and more, reading only.

For one committed meta it checks both meta pages, every page checksum and header on the way,
reachability from the root (no page referenced twice, no reference outside the pages in use,
every leaf at the same depth), key order inside each node and across nodes (each subtree within
its parent's bounds), every overflow run (checksum, length, span), the freelist (no page both
free and reachable, none listed twice), pages neither reachable nor free (leaked), and the key
count the meta records. Problems name the page: ``Problem.offset`` is a page number.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from engines.cow.freelist import decode_freelist
from engines.cow.meta import Meta, MetaSlots, read_meta_slots
from engines.cow.node import OverflowRef, decode_branch, decode_leaf
from engines.cow.page import HEADER, PageCorruptionError, PageType
from engines.cow.pagefile import PageFile
from engines.errors import CorruptionError, EngineError
from engines.reports import VerifyReport

__all__ = ["Inspection", "inspect", "verify_file", "verify_path"]

_UNSEEN, _REACHABLE, _FREE = 0, 1, 2
_MAX_LISTED = 50  # per kind; past that the report says how many more


def verify_path(
    path: Path, report: VerifyReport, *, name: str | None = None, expected_page_size: int | None = None
) -> None:
    """Verify the COW file at ``path`` (not open elsewhere for writing); never writes."""
    name = name or Path(path).name
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        report.add("missing-file", f"cannot open {name}: {exc.strerror}", file=name)
        return
    try:
        try:
            slots = read_meta_slots(fd, name, expected_page_size, allow_truncated=True)
        except PageCorruptionError as exc:
            pages = (0, 1) if exc.kind == "meta" and exc.page == 0 else (exc.page,)
            for page in pages:
                report.add(exc.kind, f"page {page}: {exc.message} (offset = page number)", file=name, offset=page)
            return
        except EngineError as exc:
            report.add("format", exc.message, file=name, offset=0)
            return
        file = PageFile(fd, Path(path), slots.page_size, writable=False, name=name)
        verify_file(file, slots, slots.newest, report)
    finally:
        os.close(fd)


def verify_file(file: PageFile, slots: MetaSlots, meta: Meta, report: VerifyReport) -> None:
    """Check ``meta``'s tree in ``file`` (its pages must not be reused meanwhile: pin them)."""
    _Checker(file, meta, report).run(slots)


@dataclass
class Inspection:
    """What ``inspect`` found, by area, for repair to choose a remedy.

    ``areas`` counts problems per area: "meta" (a meta page), "tree" (pages reachable from the
    root, keys, overflow values), "freelist" (the freelist run, free pages, the key count) and
    "space" (leaked pages). ``reachable`` marks, per page, whether the tree or freelist uses it.
    """

    report: VerifyReport
    areas: dict[str, int]
    reachable: bytearray
    keys: int

    @property
    def tree_intact(self) -> bool:
        return not self.areas.get("tree")


def inspect(file: PageFile, slots: MetaSlots, meta: Meta) -> Inspection:
    checker = _Checker(file, meta, VerifyReport(backend="cow"))
    checker.run(slots)
    reachable = bytearray(1 if state == _REACHABLE else 0 for state in checker.state)
    return Inspection(checker.report, dict(checker.areas), reachable, checker.keys)


class _Checker:
    def __init__(self, file: PageFile, meta: Meta, report: VerifyReport) -> None:
        self.file = file
        self.meta = meta
        self.report = report
        self.name = file.name
        self.state = bytearray(meta.hwm)
        self.keys = 0
        self.leaf_depth: int | None = None
        self.listed: dict[str, int] = {}
        self.areas: dict[str, int] = {}
        self.complete = True  # False once part of the tree could not be read
        self.freelist_read = True

    def add(self, kind: str, page: int | None, detail: str, area: str = "tree") -> None:
        self.areas[area] = self.areas.get(area, 0) + 1
        listed = self.listed.get(kind, 0)
        self.listed[kind] = listed + 1
        if listed < _MAX_LISTED:
            where = f"page {page}: " if page is not None else ""
            note = " (offset = page number)" if page is not None else ""
            self.report.add(kind, f"{where}{detail}{note}", file=self.name, offset=page)

    def run(self, slots: MetaSlots) -> None:
        meta = self.meta
        report = self.report
        for slot, reason in sorted(slots.problems.items()):
            self.add(
                "meta",
                slot,
                f"meta page {slot} is invalid ({reason}); the other meta "
                f"(txid {meta.txid}) is in use and there is no fallback",
                "meta",
            )
        report.count("meta_pages", len(slots.metas))
        size = slots.file_size
        if meta.hwm * self.file.page_size > size:
            self.add(
                "truncated",
                size // self.file.page_size,
                f"the file holds {size} bytes but meta page {meta.slot} uses {meta.hwm} pages",
            )
        self.state[0:2] = bytes([_REACHABLE, _REACHABLE])
        self.walk()
        self.check_freelist()
        self.check_leaks()
        if self.complete and self.keys != meta.key_count:
            self.add(
                "key-count",
                meta.slot,
                f"meta page {meta.slot} records {meta.key_count} keys, the tree holds {self.keys}",
                "freelist",
            )
        older = slots.older
        if older is not None and older.txid < meta.txid:
            try:
                self.file.read_run(older.root, older.hwm, (PageType.BRANCH, PageType.LEAF))
            except CorruptionError as exc:
                self.add(
                    "meta",
                    older.slot,
                    f"the older meta (txid {older.txid}) has an unreadable root "
                    f"page {older.root}, so there is no fallback: {exc.message}",
                    "meta",
                )
        for kind, count in self.listed.items():
            if count > _MAX_LISTED:
                report.add(kind, f"... and {count - _MAX_LISTED} more {kind} problems", file=self.name)
        report.count("keys", self.keys)
        report.count("pages", self.meta.hwm)

    # ------------------------------------------------------------------ the tree
    def claim(self, page: int, span: int, what: str, area: str = "tree") -> bool:
        """Mark a run reachable; False (and a problem) if any of it is already claimed."""
        state = self.state
        for index in range(page, page + span):
            if index >= len(state):
                self.add("reference", page, f"{what} runs past the {len(state)} pages in use", area)
                return False
            if state[index] == _REACHABLE:
                self.add("double-reference", index, f"referenced again, by {what} at page {page}", area)
                return False
        state[page : page + span] = bytes([_REACHABLE]) * span
        return True

    def read(self, page: int, kinds: tuple[PageType, ...], what: str, area: str = "tree") -> bytes | None:
        try:
            return self.file.read_run(page, self.meta.hwm, kinds)
        except PageCorruptionError as exc:
            self.complete = self.complete and area != "tree"
            self.add(exc.kind, page, f"{what}: {exc.message}", area)
            if 0 <= page < len(self.state) and self.state[page] == _UNSEEN:
                self.state[page] = _REACHABLE  # accounted for: reported, not leaked
            return None

    def walk(self) -> None:
        report = self.report
        page_size = self.file.page_size
        stack: list[tuple[int, bytes | None, bytes | None, int, str]] = [
            (self.meta.root, None, None, 0, f"the root of meta page {self.meta.slot}")
        ]
        while stack:
            page, low, high, depth, what = stack.pop()
            if page < len(self.state) and self.state[page] == _REACHABLE:
                self.add("double-reference", page, f"referenced again, by {what}")
                continue
            buffer = self.read(page, (PageType.BRANCH, PageType.LEAF), what)
            if buffer is None:
                continue
            span = HEADER.unpack_from(buffer)[5] + 1
            if not self.claim(page, span, what):
                continue
            try:
                node = (
                    decode_leaf(buffer, page, page_size) if buffer[4] == PageType.LEAF else decode_branch(buffer, page)
                )
            except (ValueError, OverflowError) as exc:
                self.complete = False
                self.add("structure", page, f"malformed page: {exc}")
                continue
            keys = node.keys
            self.check_order(page, keys, low, high)
            if buffer[4] == PageType.LEAF:
                report.count("leaf_pages")
                self.keys += len(keys)
                if self.leaf_depth is None:
                    self.leaf_depth = depth
                elif depth != self.leaf_depth:
                    self.add("structure", page, f"a leaf at depth {depth}, others are at depth {self.leaf_depth}")
                for key, value in zip(keys, node.values):  # type: ignore[union-attr]
                    if value.__class__ is OverflowRef:
                        self.check_overflow(page, key, value)  # type: ignore[arg-type]
                continue
            report.count("branch_pages")
            children = node.children  # type: ignore[union-attr]
            if not children:
                self.add("structure", page, "a branch with no children")
                continue
            for index in range(len(children) - 1, -1, -1):
                child_high = keys[index + 1] if index + 1 < len(keys) else high
                stack.append(
                    (
                        int(children[index]),  # type: ignore[arg-type]
                        keys[index],
                        child_high,
                        depth + 1,
                        f"child {index} of branch page {page}",
                    )
                )

    def check_order(self, page: int, keys: list[bytes], low: bytes | None, high: bytes | None) -> None:
        for index in range(1, len(keys)):
            if keys[index] <= keys[index - 1]:
                self.add(
                    "key-order",
                    page,
                    f"key {index} ({keys[index]!r}) is not after key {index - 1} ({keys[index - 1]!r})",
                )
                break
        if keys and low is not None and keys[0] < low:
            self.add("key-order", page, f"first key {keys[0]!r} is below its parent's bound {low!r}")
        if keys and high is not None and keys[-1] >= high:
            self.add("key-order", page, f"last key {keys[-1]!r} is not below the next sibling's bound {high!r}")

    def check_overflow(self, leaf: int, key: bytes, ref: OverflowRef) -> None:
        what = f"the overflow value of key {key!r} in leaf page {leaf}"
        try:
            self.file.read_overflow(ref, self.meta.hwm)
        except PageCorruptionError as exc:
            self.complete = False
            self.add(
                "overflow" if exc.kind in ("overflow", "page-header", "reference") else exc.kind,
                ref.page,
                f"{what}: {exc.message}",
            )
            if 0 <= ref.page < len(self.state) and self.state[ref.page] == _UNSEEN:
                self.state[ref.page] = _REACHABLE
            return
        self.report.count("overflow_runs")
        self.claim(ref.page, ref.span, what)

    # ------------------------------------------------------------------ free pages
    def check_freelist(self) -> None:
        meta = self.meta
        if not meta.freelist:
            return
        buffer = self.read(meta.freelist, (PageType.FREELIST,), f"the freelist of meta page {meta.slot}", "freelist")
        if buffer is None:
            self.freelist_read = False
            return
        span = HEADER.unpack_from(buffer)[5] + 1
        self.claim(meta.freelist, span, "the freelist", "freelist")
        try:
            rows = decode_freelist(buffer, HEADER.unpack_from(buffer)[6])
        except (ValueError, OverflowError) as exc:
            self.add("freelist", meta.freelist, f"malformed freelist: {exc}", "freelist")
            self.freelist_read = False
            return
        state = self.state
        free = 0
        for start, length, _txid in rows:
            if start < 2 or start + length > meta.hwm:
                self.add(
                    "freelist",
                    meta.freelist,
                    f"free extent {start}+{length} lies outside the {meta.hwm} pages in use",
                    "freelist",
                )
                continue
            for page in range(start, start + length):
                if state[page] == _REACHABLE:
                    self.add("free-and-reachable", page, "is listed free but is part of the tree", "freelist")
                elif state[page] == _FREE:
                    self.add("freelist", page, "is listed free twice", "freelist")
                state[page] = _FREE
                free += 1
        self.report.count("free_pages", free)

    def check_leaks(self) -> None:
        if not self.complete or not self.freelist_read:
            return  # pages under an unreadable node, or missing from an unreadable freelist, are unknown
        state = self.state
        page = 2
        while page < len(state):
            if state[page] != _UNSEEN:
                page += 1
                continue
            start = page
            while page < len(state) and state[page] == _UNSEEN:
                page += 1
            through = "" if page - start == 1 else f" (and every page through {page - 1})"
            self.add("unreachable", start, f"neither reachable from the root nor free{through}: leaked space", "space")
