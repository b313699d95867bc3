"""A commit's private dirty tree, and writing it to new pages.

``DirtyTree`` copies the clean nodes a commit changes (``own_path``), splits nodes that grow
too big in memory, and at the end (or early, when the copies outgrow their share of the budget)
rebalances and *spills*: underfull nodes merge into a neighbour, neighbouring dirty leaves are
written as one run cut into full pages, large values go to overflow runs, and every page gets a
new page number (from the freelist, else past the high-water mark). Readers never see any of
this: they use the old root until ``commit`` swaps the new one in.
"""

from __future__ import annotations

import struct
from bisect import bisect_right

from engines.cow.node import (
    BRANCH_ENTRY_OVERHEAD,
    LEAF_ENTRY_OVERHEAD,
    Branch,
    Leaf,
    Node,
    OverflowRef,
    encode_branch,
    encode_leaf,
    make_run,
    node_memory,
    split_ranges,
    stamp,
)
from engines.cow.page import HEADER_SIZE, PageType, pages_for
from engines.cow.tree import CowTree

__all__ = ["DirtyTree"]

Runs = list[tuple[int, bytearray]]
_OVERFLOW_FIELD = struct.Struct("<I")


class DirtyTree:
    """Copies of the nodes one commit changes, and the pages it writes."""

    def __init__(self, tree: CowTree, txid: int) -> None:
        self.tree = tree
        self.txid = txid
        self.page_size = tree.page_size
        self.settings = tree.settings
        self.root: int | Node = tree.root
        self.count = tree.key_count
        self.freed: list[tuple[int, int]] = []  # clean runs replaced: pending at txid
        self.allocated: list[tuple[int, int]] = []
        self.runs: Runs = []
        self.dirty = 0
        self.spill_at = max(1 << 16, self.settings.dirty_budget_bytes // 4)
        self.freelist_page = 0
        self.freelist_span = 0
        self.pending_added = False

    # ------------------------------------------------------------------ merging the buffer
    def own_path(self, key: bytes) -> tuple[Leaf, bytes | None]:
        """The dirty leaf for ``key`` (copying clean nodes on the way) and its upper bound."""
        node = self.root
        if type(node) is int:
            node = self._own(node)
            self.root = node
        upper: bytes | None = None
        while node.__class__ is Branch:
            keys = node.keys
            index = bisect_right(keys, key, 1) - 1
            if index + 1 < len(keys):
                upper = keys[index + 1]
            children = node.children  # type: ignore[union-attr]
            child = children[index]
            if type(child) is int:
                child = self._own(child)
                children[index] = child
            node = child
        return node, upper  # type: ignore[return-value]

    def _own(self, page: int) -> Node:
        """A dirty copy of the clean node at ``page``, whose run is freed by this commit."""
        node = self.tree._load(page)
        self.freed.append((page, node.span))
        self.dirty += node.memory
        if node.__class__ is Leaf:
            return Leaf(list(node.keys), list(node.values))  # type: ignore[union-attr]
        return Branch(list(node.keys), list(node.children))  # type: ignore[union-attr]

    def _split(self, target: Node) -> None:
        """Split an oversized dirty node into half-full ones, up the tree as far as needed."""
        if not target.keys:
            return
        path: list[tuple[Branch, int]] = []
        node = self.root
        probe = target.keys[0]
        while node is not target:
            index = bisect_right(node.keys, probe, 1) - 1  # type: ignore[union-attr]
            path.append((node, index))  # type: ignore[arg-type]
            node = node.children[index]  # type: ignore[union-attr]
        limit = self.settings.split_limit
        while len(node.keys) > limit:  # type: ignore[union-attr]
            count = len(node.keys)  # type: ignore[union-attr]
            step = -(-count // -(-count // max(2, limit // 2)))
            if node.__class__ is Leaf:
                pieces: list[Node] = [
                    Leaf(node.keys[at : at + step], node.values[at : at + step])  # type: ignore[union-attr]
                    for at in range(step, count, step)
                ]
                del node.values[step:]  # type: ignore[union-attr]
            else:
                pieces = [
                    Branch(node.keys[at : at + step], node.children[at : at + step])  # type: ignore[union-attr]
                    for at in range(step, count, step)
                ]
                del node.children[step:]  # type: ignore[union-attr]
            del node.keys[step:]  # type: ignore[union-attr]
            bounds = [piece.keys[0] for piece in pieces]
            if path:
                parent, index = path.pop()
                parent.keys[index + 1 : index + 1] = bounds
                parent.children[index + 1 : index + 1] = pieces
                node = parent
            else:
                node = Branch([node.keys[0], *bounds], [node, *pieces])  # type: ignore[union-attr]
                self.root = node

    # ------------------------------------------------------------------ writing out
    def spill_all(self) -> int:
        tree = self.tree
        with tree.lock:  # the cache is shared with readers
            root = self.root
            if type(root) is not int:
                root = self._rebalance_root()
                if type(root) is not int:
                    pieces = self._spill(root)  # type: ignore[arg-type]
                    if not pieces:
                        pieces = self._write_leaves([], [])
                    while len(pieces) > 1:
                        pieces = self._write_branches([key for key, _ in pieces], [page for _, page in pieces])
                    root = pieces[0][1]
            self.root = root
        self._write_out()
        self.dirty = 0
        return root  # type: ignore[return-value]

    def _write_out(self) -> None:
        if self.runs:
            self.tree.file.write_runs(self.runs)
            self.runs = []

    def _allocate(self, span: int) -> int:
        tree = self.tree
        assert tree.freelist is not None
        page = tree.freelist.allocate(span)
        if page is None:
            page = tree.hwm
            tree.hwm += span
        self.allocated.append((page, span))
        return page

    # ------------------------------------------------------------------ rebalancing
    def _rebalance_root(self) -> int | Node:
        root = self.root
        if root.__class__ is Branch:
            self._rebalance(root)  # type: ignore[arg-type]
            while root.__class__ is Branch and len(root.children) == 1:  # type: ignore[union-attr]
                root = root.children[0]  # type: ignore[union-attr]
            if root.__class__ is Branch and not root.children:  # type: ignore[union-attr]
                root = Leaf([], [])
        self.root = root
        return root

    def _underfull(self, node: Node) -> bool:
        count = len(node.keys)
        max_keys = self.settings.max_keys_per_node
        if max_keys and count < max_keys // 4:
            return True
        if node.__class__ is Leaf:
            size = HEADER_SIZE + LEAF_ENTRY_OVERHEAD * count + sum(map(len, node.keys)) + sum(map(len, node.values))  # type: ignore[union-attr]
        else:
            if count < 2:
                return True
            size = HEADER_SIZE + BRANCH_ENTRY_OVERHEAD * count + sum(map(len, node.keys))
        return size < self.page_size // 4

    def _own_child(self, parent: Branch, index: int) -> Node:
        child = parent.children[index]
        if type(child) is int:
            child = self._own(child)
            parent.children[index] = child
        return child  # type: ignore[return-value]

    def _rebalance(self, branch: Branch) -> None:
        """Drop empty dirty children and merge underfull ones into a neighbour (bbolt's rebalance)."""
        keys = branch.keys
        children = branch.children
        for child in children:
            if child.__class__ is Branch:
                self._rebalance(child)  # type: ignore[arg-type]
        index = 0
        while index < len(children):
            child = children[index]
            if type(child) is int:
                index += 1
                continue
            if not child.keys:  # type: ignore[union-attr]
                del children[index]
                del keys[index]
                continue
            if len(children) == 1 or not self._underfull(child):  # type: ignore[arg-type]
                index += 1
                continue
            if index > 0:
                left = self._own_child(branch, index - 1)
                _merge(left, child, keys[index])  # type: ignore[arg-type]
                del children[index]
                del keys[index]
            else:
                right = self._own_child(branch, 1)
                _merge(child, right, keys[1])  # type: ignore[arg-type]
                del children[1]
                del keys[1]

    # ------------------------------------------------------------------ spilling
    def _spill(self, node: Node) -> list[tuple[bytes, int]]:
        """Write a dirty node (after its dirty children) to new pages: [(first key, page), ...]."""
        if node.__class__ is Leaf:
            return self._write_leaves(node.keys, node.values)  # type: ignore[union-attr]
        keys: list[bytes] = []
        children: list[int] = []
        # Neighbouring dirty leaves are written as one run, cut into full pages: the commit
        # rewrites them anyway, and this keeps leaves packed under random inserts.
        run_keys: list[bytes] = []
        run_values: list[bytes | OverflowRef] = []
        for key, child in zip(node.keys, node.children):  # type: ignore[union-attr]
            if child.__class__ is Leaf:
                run_keys.extend(child.keys)  # type: ignore[union-attr]
                run_values.extend(child.values)  # type: ignore[union-attr]
                continue
            if run_keys:
                self._add_pieces(keys, children, self._write_leaves(run_keys, run_values))
                run_keys, run_values = [], []
            if type(child) is int:
                keys.append(key)
                children.append(child)
            else:
                self._add_pieces(keys, children, self._spill(child))  # type: ignore[arg-type]
        if run_keys:
            self._add_pieces(keys, children, self._write_leaves(run_keys, run_values))
        if not keys:
            return []
        return self._write_branches(keys, children)

    @staticmethod
    def _add_pieces(keys: list[bytes], children: list[int], pieces: list[tuple[bytes, int]]) -> None:
        for piece_key, page in pieces:
            keys.append(piece_key)
            children.append(page)

    def _write_leaves(self, keys: list[bytes], values: list[bytes | OverflowRef]) -> list[tuple[bytes, int]]:
        page_size = self.page_size
        threshold = page_size // 4  # larger values go to overflow runs: a leaf always holds several
        value_lengths = list(map(len, values))
        if value_lengths and max(value_lengths) > threshold:
            for index in [i for i, length in enumerate(value_lengths) if length > threshold]:
                values[index] = self._write_overflow(values[index])  # type: ignore[arg-type]
                value_lengths[index] = len(values[index])
        key_lengths = list(map(len, keys))
        count = len(keys)
        max_keys = self.settings.max_keys_per_node
        total = LEAF_ENTRY_OVERHEAD * count + sum(key_lengths) + sum(value_lengths)
        if total <= page_size - HEADER_SIZE and (not max_keys or count <= max_keys):
            ranges = [(0, count)]
        else:
            sizes = [LEAF_ENTRY_OVERHEAD + k + v for k, v in zip(key_lengths, value_lengths)]
            ranges = split_ranges(sizes, page_size - HEADER_SIZE, max_keys)
        cache = self.tree.cache
        out = []
        for start, stop in ranges:
            if len(ranges) == 1:
                piece_keys, piece_values = keys, values
            else:
                piece_keys, piece_values = keys[start:stop], values[start:stop]
            flags, body = encode_leaf(piece_keys, piece_values)
            run = make_run(PageType.LEAF, flags, len(piece_keys), self.txid, body, page_size)
            span = len(run) // page_size
            page = self._allocate(span)
            stamp(run, page)
            self.runs.append((page, run))
            memory = node_memory(HEADER_SIZE + len(body), len(piece_keys))
            cache.put(page, Leaf(piece_keys, piece_values, page, span, memory), memory)
            out.append((piece_keys[0] if piece_keys else b"", page))
        return out

    def _write_branches(self, keys: list[bytes], children: list[int]) -> list[tuple[bytes, int]]:
        page_size = self.page_size
        max_keys = self.settings.max_keys_per_node
        count = len(keys)
        key_lengths = list(map(len, keys))
        if BRANCH_ENTRY_OVERHEAD * count + sum(key_lengths) <= page_size - HEADER_SIZE and (
            not max_keys or count <= max_keys
        ):
            ranges = [(0, count)]
        else:
            ranges = split_ranges(
                [BRANCH_ENTRY_OVERHEAD + k for k in key_lengths], page_size - HEADER_SIZE, max_keys, minimum=2
            )
        cache = self.tree.cache
        out = []
        for start, stop in ranges:
            piece_keys, piece_children = keys[start:stop], children[start:stop]
            body = encode_branch(piece_keys, piece_children)
            run = make_run(PageType.BRANCH, 0, len(piece_keys), self.txid, body, page_size)
            span = len(run) // page_size
            page = self._allocate(span)
            stamp(run, page)
            self.runs.append((page, run))
            memory = node_memory(HEADER_SIZE + len(body), len(piece_keys))
            cache.put(page, Branch(piece_keys, piece_children, page, span, memory), memory)  # type: ignore[arg-type]
            out.append((piece_keys[0], page))
        return out

    def _write_overflow(self, value: bytes) -> OverflowRef:
        run = make_run(PageType.OVERFLOW, 0, len(value), self.txid, value, self.page_size)
        span = len(run) // self.page_size
        page = self._allocate(span)
        stamp(run, page)
        self.runs.append((page, run))
        self.tree.cache.put(page, value, len(value) + 64)
        return OverflowRef(page, len(value), span)

    def _write_freelist(self) -> None:
        freelist = self.tree.freelist
        assert freelist is not None
        size = freelist.encoded_size()
        if size == HEADER_SIZE:
            return
        page_size = self.page_size
        span = pages_for(size, page_size)
        page = self._allocate(span)  # takes whole extents' heads: the encoding cannot grow
        count, body = freelist.encode()
        run = make_run(PageType.FREELIST, 0, count, self.txid, body, page_size)
        if len(run) < span * page_size:  # it shrank: keep the whole run, so no page leaks
            run.extend(bytes(span * page_size - len(run)))
            _OVERFLOW_FIELD.pack_into(run, 16, span - 1)
        stamp(run, page)
        self.runs.append((page, run))
        self.freelist_page = page
        self.freelist_span = span


def _merge(left: Node, right: Node, bound: bytes) -> None:
    """Append ``right``'s entries to ``left``; ``bound`` is the parent's key for ``right``."""
    if left.__class__ is Leaf:
        left.keys.extend(right.keys)
        left.values.extend(right.values)  # type: ignore[union-attr]
    else:
        # right.keys[0] may be a loose lower bound; the parent's key separates it from left.
        left.keys.append(bound)
        left.keys.extend(right.keys[1:])
        left.children.extend(right.children)  # type: ignore[union-attr]
