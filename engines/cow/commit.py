"""Committing a tree: merge the write buffer into copies of the nodes it touches, write them to
new pages, then the freelist, fsync, and the meta.

The protocol (bbolt's and LMDB's, with a checksum on every page):

1. Pages freed by commits ``<= txid - 2`` (and not pinned) become reusable; see ``freelist.py``.
2. The sorted buffer is merged leaf by leaf into dirty copies of the nodes on its paths. When
   the copies outgrow half the dirty budget they are written out early (spilled), so a commit's
   memory stays bounded however many leaves it touches.
3. Dirty nodes are merged where underfull, cut into page-sized pieces, and written to free pages
   or past the high-water mark; values over the overflow threshold go to OVERFLOW runs.
4. The pages this commit replaced, and the previous freelist run, become pending at ``txid``;
   the freelist is written to a run of its own.
5. fsync; the meta goes into the slot that does not hold the current meta; fsync.
6. Only now do readers switch to the new root (until then they read the old one and the buffer).

A crash before step 5 completes leaves the previous meta, whose pages nobody has touched. A
failure before the meta is written (a corrupt page met while merging, a full disk) gives the
pages back and leaves the tree and buffer as they were.
"""

from __future__ import annotations

import struct
from bisect import bisect_left, bisect_right
from collections.abc import Callable

from engines.cow.meta import Meta
from engines.cow.node import (
    Branch,
    Leaf,
    Node,
    OverflowRef,
    encode_branch,
    encode_leaf,
    make_run,
    split_ranges,
    stamp,
)
from engines.cow.page import HEADER_SIZE, PageType, pages_for
from engines.cow.tree import CowTree

__all__ = ["commit"]

Runs = list[tuple[int, bytearray]]
_OVERFLOW_FIELD = struct.Struct("<I")
_PY_ENTRY_MEMORY = 110
_PY_NODE_MEMORY = 250
_ENTRY_MEMORY = 110


def commit(tree: CowTree, lsn: int, before_meta: Callable[[], None] | None = None, *, chunk: int | None = None,
           force: bool = False) -> bool:
    """Commit the buffer (or ``chunk`` keys of it); False if there was nothing to do.

    ``lsn`` is the last WAL record applied. The meta records it when the whole buffer is
    committed; a partial commit records the LSN before the oldest write it leaves buffered, so
    replay from there is complete (and idempotent for what the tree already holds). Partial
    commits take consecutive keys, round robin over the key space: each rewrites a slice of the
    tree, so the pages waiting two commits for reuse stay a slice too.

    ``before_meta`` runs after the pages are written and before the meta (the engine makes the
    WAL durable up to ``lsn`` there, so the tree never gets ahead of the log). ``force`` commits
    even with nothing buffered (a new meta and freelist).
    """
    with tree.commit_lock:
        if tree.failure is not None:
            raise tree.failure
        if not force and not tree.buffer and lsn == tree.meta.lsn:
            return False
        assert tree.freelist is not None, "a read-only tree cannot commit"
        txid = tree.meta.txid + 1
        with tree.lock:  # writers wait on commit_lock: the buffer cannot change under us
            chosen, remaining, cursor, meta_lsn = _choose(tree, lsn, chunk)
            values = list(map(tree.buffer.__getitem__, chosen))
            reusable = txid - 2
            if tree.pins:
                reusable = min(reusable, min(tree.pins.values()))
            for page in tree.freelist.release(reusable):
                tree.cache.discard(page)
        work = _Commit(tree, txid)
        try:
            if chosen:
                work.merge(chosen, values)
            root = work.finish()
        except BaseException:
            work.abort()
            raise
        previous = tree.meta
        meta = Meta(txid, root, work.freelist_page, tree.hwm, meta_lsn, work.count, tree.page_size,
                    slot=1 - previous.slot)
        try:
            if before_meta is not None:
                before_meta()
            tree.file.sync()
            tree.file.write_meta(meta)
            tree.file.sync()
        except BaseException as exc:
            tree.fail(exc)
            raise
        with tree.lock:
            tree.root = root
            tree.meta = meta
            tree.key_count = work.count
            tree.freelist_span = work.freelist_span
            tree.forget_buffered(chosen, values, remaining)
            tree.commit_cursor = cursor
            tree.commits += 1
        # Pages past both metas' trees are free: give them back to the file system.
        keep = max(meta.hwm, previous.hwm)
        if tree.file.size() > keep * tree.page_size:
            tree.file.truncate(keep)
        return True


def _choose(tree: CowTree, lsn: int, chunk: int | None) -> tuple[list[bytes], list[bytes], bytes | None, int]:
    """The buffered keys to commit, those left (in order), the next cursor, and the LSN to claim."""
    ordered = tree.sorted_buffer_keys()
    if chunk is None or chunk >= len(ordered):
        return ordered, [], None, lsn
    cursor = tree.commit_cursor
    start = 0 if cursor is None else bisect_left(ordered, cursor)
    if start >= len(ordered):
        start = 0
    stop = min(len(ordered), start + chunk)
    chosen = ordered[start:stop]
    # buffer_lsn iterates in the order keys were first buffered: the first key not chosen holds
    # the oldest write that stays behind.
    low, high = chosen[0], chosen[-1]
    oldest = next(first for key, first in tree.buffer_lsn.items() if not low <= key <= high)
    return chosen, ordered[:start] + ordered[stop:], (ordered[stop] if stop < len(ordered) else None), oldest - 1


class _Commit:
    """One commit's private dirty tree and the pages it writes."""

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
        self.spill_at = max(1 << 16, self.settings.dirty_budget_bytes // 2)
        self.freelist_page = 0
        self.freelist_span = 0
        self.pending_added = False

    # ------------------------------------------------------------------ merging the buffer
    def merge(self, keys: list[bytes], values: list[bytes | None]) -> None:
        """Apply buffered ``keys`` (in order) and their ``values`` to the dirty tree."""
        tree = self.tree
        total = len(keys)
        limit = self.settings.split_limit
        index = 0
        while index < total:
            with tree.lock:
                if values[index] is None:
                    stop = self._skip_absent_deletes(keys, values, index)
                    if stop > index:
                        index = stop
                        continue
                leaf, upper = self._own_path(keys[index])
            stop = total if upper is None else bisect_left(keys, upper, index + 1)
            self._apply(leaf, keys, values, index, stop)
            if len(leaf.keys) > limit:
                self._split(leaf)
            index = stop
            if self.dirty > self.spill_at and index < total:
                self._spill_all()

    def _skip_absent_deletes(self, keys: list[bytes], values: list[bytes | None], index: int) -> int:
        """Past a run of deletes whose keys are not in the tree (nothing to copy for them)."""
        node = self.root
        upper: bytes | None = None
        while True:
            if type(node) is int:
                node = self.tree._load(node)
            if node.__class__ is Leaf:
                break
            node_keys = node.keys  # type: ignore[union-attr]
            slot = bisect_right(node_keys, keys[index], 1) - 1
            if slot + 1 < len(node_keys):
                upper = node_keys[slot + 1]
            node = node.children[slot]  # type: ignore[union-attr]
        leaf_keys = node.keys  # type: ignore[union-attr]
        stop = index
        while stop < len(keys) and values[stop] is None and (upper is None or keys[stop] < upper):
            position = bisect_left(leaf_keys, keys[stop])
            if position < len(leaf_keys) and leaf_keys[position] == keys[stop]:
                break
            stop += 1
        return stop

    def _apply(self, leaf: Leaf, keys: list[bytes], values: list[bytes | None], first: int, stop: int) -> None:
        leaf_keys = leaf.keys
        leaf_values = leaf.values
        freed = self.freed
        low = 0
        added = 0
        count = self.count
        for key, value in zip(keys[first:stop], values[first:stop]):
            position = bisect_left(leaf_keys, key, low)
            if position < len(leaf_keys) and leaf_keys[position] == key:
                old = leaf_values[position]
                if old.__class__ is OverflowRef:
                    freed.append((old.page, old.span))  # type: ignore[union-attr]
                if value is None:
                    del leaf_keys[position]
                    del leaf_values[position]
                    count -= 1
                else:
                    leaf_values[position] = value
                    added += len(value)
            elif value is not None:
                leaf_keys.insert(position, key)
                leaf_values.insert(position, value)
                count += 1
                added += len(key) + len(value) + _ENTRY_MEMORY
            low = position
        self.count = count
        self.dirty += added

    def _own_path(self, key: bytes) -> tuple[Leaf, bytes | None]:
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
                pieces: list[Node] = [Leaf(node.keys[at:at + step], node.values[at:at + step])  # type: ignore[union-attr]
                                      for at in range(step, count, step)]
                del node.values[step:]  # type: ignore[union-attr]
            else:
                pieces = [Branch(node.keys[at:at + step], node.children[at:at + step])  # type: ignore[union-attr]
                          for at in range(step, count, step)]
                del node.children[step:]  # type: ignore[union-attr]
            del node.keys[step:]  # type: ignore[union-attr]
            bounds = [piece.keys[0] for piece in pieces]
            if path:
                parent, index = path.pop()
                parent.keys[index + 1:index + 1] = bounds
                parent.children[index + 1:index + 1] = pieces
                node = parent
            else:
                node = Branch([node.keys[0], *bounds], [node, *pieces])  # type: ignore[union-attr]
                self.root = node

    # ------------------------------------------------------------------ writing out
    def finish(self) -> int:
        """Write what is left, then the freelist; returns the new root page."""
        root = self._spill_all()
        tree = self.tree
        freelist = tree.freelist
        assert freelist is not None
        pending = [page for first, span in self.freed for page in range(first, first + span)]
        if tree.meta.freelist:
            pending.extend(range(tree.meta.freelist, tree.meta.freelist + tree.freelist_span))
        freelist.add_pending(self.txid, pending)
        self.pending_added = True
        tree.hwm = freelist.trim_tail(tree.hwm)
        self._write_freelist()
        self._write_out()
        return root

    def abort(self) -> None:
        """Give back every page this commit took; the committed tree never saw them."""
        tree = self.tree
        freelist = tree.freelist
        assert freelist is not None
        if self.pending_added:
            freelist.drop_pending(self.txid)
        with tree.lock:
            for first, span in self.allocated:
                for page in range(first, first + span):
                    tree.cache.discard(page)
        freelist.give_back([page for first, span in self.allocated for page in range(first, first + span)])

    def _spill_all(self) -> int:
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
            size = HEADER_SIZE + 7 * count + sum(map(len, node.keys)) + sum(map(len, node.values))  # type: ignore[union-attr]
        else:
            if count < 2:
                return True
            size = HEADER_SIZE + 10 * count + sum(map(len, node.keys))
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
        total = 7 * count + sum(key_lengths) + sum(value_lengths)
        if total <= page_size - HEADER_SIZE and (not max_keys or count <= max_keys):
            ranges = [(0, count)]
        else:
            sizes = [7 + k + v for k, v in zip(key_lengths, value_lengths)]
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
            memory = HEADER_SIZE + len(body) + _PY_ENTRY_MEMORY * len(piece_keys) + _PY_NODE_MEMORY
            cache.put(page, Leaf(piece_keys, piece_values, page, span, memory), memory)
            out.append((piece_keys[0] if piece_keys else b"", page))
        return out

    def _write_branches(self, keys: list[bytes], children: list[int]) -> list[tuple[bytes, int]]:
        page_size = self.page_size
        max_keys = self.settings.max_keys_per_node
        count = len(keys)
        key_lengths = list(map(len, keys))
        if 10 * count + sum(key_lengths) <= page_size - HEADER_SIZE and (not max_keys or count <= max_keys):
            ranges = [(0, count)]
        else:
            ranges = split_ranges([10 + k for k in key_lengths], page_size - HEADER_SIZE, max_keys)
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
            memory = HEADER_SIZE + len(body) + _PY_ENTRY_MEMORY * len(piece_keys) + _PY_NODE_MEMORY
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
