"""The on-disk pieces in isolation: pages, nodes, metas and the freelist."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engines.cow.freelist import Freelist, decode_freelist, extents
from engines.cow.meta import Meta, decode_meta, encode_meta
from engines.cow.node import (
    OverflowRef,
    decode_branch,
    decode_leaf,
    encode_branch,
    encode_leaf,
    make_run,
    split_ranges,
    stamp,
)
from engines.cow.page import HEADER, HEADER_SIZE, PageType, check_page_size, verify_checksum

PAGE = 4096


def leaf_run(keys: list[bytes], values: list, page: int = 7) -> bytearray:
    flags, body = encode_leaf(keys, values)
    run = make_run(PageType.LEAF, flags, len(keys), 3, body, PAGE)
    stamp(run, page)
    return run


def test_leaf_round_trip_keeps_values_and_overflow_references() -> None:
    keys = [b"a", b"bb", b"ccc"]
    values = [b"", OverflowRef(42, 9000, 3), b"x" * 50]
    run = leaf_run(keys, values)
    assert verify_checksum(run)
    leaf = decode_leaf(bytes(run), 7, PAGE)
    assert leaf.keys == keys
    assert leaf.values == values
    assert leaf.values[1].span == 3  # type: ignore[union-attr]
    assert HEADER.unpack_from(run)[4] == 7  # the page id is in the header


def test_a_leaf_larger_than_a_page_spans_pages_and_says_so() -> None:
    keys = [b"k%04d" % i for i in range(60)]
    run = leaf_run(keys, [b"v" * 100] * 60)
    assert len(run) == 2 * PAGE
    assert HEADER.unpack_from(run)[5] == 1  # overflow: one page follows
    assert decode_leaf(bytes(run), 7, PAGE).keys == keys


def test_branch_round_trip() -> None:
    body = encode_branch([b"", b"m", b"t"], [5, 9, 11])
    run = make_run(PageType.BRANCH, 0, 3, 1, body, PAGE)
    stamp(run, 4)
    branch = decode_branch(bytes(run), 4)
    assert branch.keys == [b"", b"m", b"t"] and branch.children == [5, 9, 11]


def test_any_flipped_bit_fails_the_checksum() -> None:
    run = leaf_run([b"key"], [b"value"])
    for offset in (0, 5, 9, 40, 4000):
        damaged = bytearray(run)
        damaged[offset] ^= 0x10
        assert not verify_checksum(damaged)


def test_decoding_lengths_past_the_run_is_refused() -> None:
    run = leaf_run([b"key"], [b"value"])
    HEADER.pack_into(run, 0, 0, PageType.LEAF, 0, 0, 7, 0, 500, 3)  # claims 500 entries
    with pytest.raises(ValueError):
        decode_leaf(bytes(run), 7, PAGE)


@given(st.lists(st.integers(1, 1200), min_size=1, max_size=300), st.sampled_from([0, 4, 32]))
def test_split_ranges_cover_every_entry_in_order_and_fit(sizes: list[int], max_entries: int) -> None:
    capacity = PAGE - HEADER_SIZE
    ranges = split_ranges(sizes, capacity, max_entries)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(sizes)
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    for start, stop in ranges:
        assert stop > start
        if max_entries:
            assert stop - start <= max_entries
        if stop - start > 2:  # pieces of 1-2 entries may span pages; others fit
            assert sum(sizes[start:stop]) <= capacity


def test_split_ranges_packs_a_long_run_nearly_full() -> None:
    ranges = split_ranges([120] * 1000, PAGE - HEADER_SIZE, 0)
    per_page = (PAGE - HEADER_SIZE) // 120
    assert len(ranges) == -(-1000 // per_page)


def test_meta_round_trip_and_damage() -> None:
    meta = Meta(txid=9, root=5, freelist=6, hwm=10, lsn=1234, key_count=77, page_size=PAGE, slot=1)
    page = encode_meta(meta)
    assert decode_meta(bytes(page), 1) == meta
    with pytest.raises(ValueError, match="checksum"):
        damaged = bytearray(page)
        damaged[60] ^= 1
        decode_meta(bytes(damaged), 1)
    with pytest.raises(ValueError, match="magic"):
        decode_meta(bytes(PAGE), 0)
    with pytest.raises(ValueError, match="expected meta page 0"):
        decode_meta(bytes(page), 0)  # slot 1's meta read as slot 0


@pytest.mark.parametrize("size", [0, 512, 3000, 131072, True, "4096"])
def test_page_size_must_be_a_power_of_two_in_range(size: object) -> None:
    with pytest.raises(ValueError):
        check_page_size(size)


def test_freelist_hands_out_the_lowest_page_and_runs_from_extent_heads() -> None:
    assert Freelist([9, 3, 4, 5, 6, 20, 21]).allocate(1) == 3
    freelist = Freelist([3, 4, 5, 6, 9, 20, 21, 22])
    before = len(extents(page for page, _ in freelist.pages()))
    assert freelist.allocate(3) == 3  # the head of the first extent long enough
    assert freelist.allocate(3) == 20
    assert freelist.allocate(2) is None
    after = len(extents(page for page, _ in freelist.pages()))
    assert after <= before


def test_freed_pages_wait_for_their_release() -> None:
    freelist = Freelist()
    freelist.add_pending(5, [10, 11])
    freelist.add_pending(6, [12])
    assert freelist.allocate(1) is None
    assert sorted(freelist.release(5)) == [10, 11]
    assert freelist.allocate(1) == 10
    assert freelist.pending_count == 1


def test_freelist_encoding_round_trip() -> None:
    freelist = Freelist([2, 3, 4, 8], {7: [30, 31, 40]})
    count, body = freelist.encode()
    run = make_run(PageType.FREELIST, 0, count, 1, body, PAGE)
    rows = decode_freelist(bytes(run), count)
    assert sorted(rows) == [(2, 3, 0), (8, 1, 0), (30, 2, 7), (40, 1, 7)]
    assert freelist.encoded_size() == HEADER_SIZE + 20 * count


def test_trim_tail_gives_back_only_trailing_free_pages() -> None:
    freelist = Freelist([5, 8, 9])
    assert freelist.trim_tail(10) == 8
    assert freelist.free_count == 1
