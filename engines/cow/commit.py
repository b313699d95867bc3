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

from bisect import bisect_left, bisect_right
from collections.abc import Callable

from engines.cow.meta import Meta
from engines.cow.node import Leaf, OverflowRef
from engines.cow.spill import DirtyTree
from engines.cow.tree import CowTree

__all__ = ["commit"]

_ENTRY_MEMORY = 110  # Python memory of an entry added to a dirty leaf, beyond its bytes


def commit(
    tree: CowTree,
    lsn: int,
    before_meta: Callable[[], None] | None = None,
    *,
    chunk: int | None = None,
    force: bool = False,
) -> bool:
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
        meta = Meta(
            txid, root, work.freelist_page, tree.hwm, meta_lsn, work.count, tree.page_size, slot=1 - previous.slot
        )
        try:
            if before_meta is not None:
                before_meta()
            tree.file.sync(site="cow.commit.pages")  # pages durable before a meta points at them
            tree.file.write_meta(meta)
            tree.file.sync(site="cow.commit.meta")
        except BaseException as exc:
            tree.fail(exc)
            raise
        with tree.lock:
            tree.root = root
            tree.meta = meta
            for page, _span in work.freed:  # no reader can reach the replaced pages any more
                tree.cache.discard(page)
            tree.key_count = work.count
            tree.freelist_span = work.freelist_span
            tree.forget_buffered(chosen, values, remaining)
            tree.commit_cursor = cursor
            tree.commits += 1
        # Pages past both metas' trees are free: give them back to the file system (not while a
        # copy of a pinned, possibly longer, meta is being made).
        keep = max(meta.hwm, previous.hwm)
        if not tree.pins and tree.file.size() > keep * tree.page_size:
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


class _Commit(DirtyTree):
    """Merges the chosen buffered writes into the dirty tree; gives everything back on failure."""

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
                leaf, upper = self.own_path(keys[index])
            stop = total if upper is None else bisect_left(keys, upper, index + 1)
            self._apply(leaf, keys, values, index, stop)
            if len(leaf.keys) > limit:
                self._split(leaf)
            index = stop
            if self.dirty > self.spill_at and index < total:
                self.spill_all()

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

    def finish(self) -> int:
        """Write what is left, then the freelist; returns the new root page."""
        root = self.spill_all()
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
