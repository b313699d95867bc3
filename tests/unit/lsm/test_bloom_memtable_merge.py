"""The in-memory pieces: bloom filter, memtable ordering, chunk merging against a dict model."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.lsm.bloom import BloomFilter, build_bloom, key_hash
from engines.lsm.memtable import Memtable
from engines.lsm.merge import live_rows, merge_chunks


def test_bloom_has_no_false_negatives_and_few_false_positives() -> None:
    keys = [b"present-%d" % i for i in range(20000)]
    bloom = BloomFilter.decode(build_bloom(map(key_hash, keys), len(keys), 10))
    assert all(bloom.may_contain(key) for key in keys)
    absent = [b"absent-%d" % i for i in range(20000)]
    rate = sum(bloom.may_contain(key) for key in absent) / len(absent)
    assert rate < 0.03, rate


def test_bloom_decode_rejects_malformed_blocks() -> None:
    body = build_bloom(map(key_hash, [b"a", b"b"]), 2, 10)
    for bad in (body[:5], body[:-1], b"\x09" + body[1:]):
        with pytest.raises(ValueError):
            BloomFilter.decode(bad)


def test_memtable_keeps_order_across_interleaved_writes_and_scans() -> None:
    rng = random.Random(3)
    memtable = Memtable()
    model: dict[bytes, bytes | None] = {}
    for lsn in range(1, 3000):
        key = b"k%05d" % rng.randrange(2000)
        value = None if rng.random() < 0.1 else b"v%d" % lsn
        memtable.apply(lsn, [(key, value)])
        model[key] = value
        if lsn % 97 == 0:
            assert memtable.sorted_keys() == sorted(model)
    assert [pair for keys, values in memtable.chunks(b"k00500", b"k01500") for pair in zip(keys, values)] == sorted(
        (k, v) for k, v in model.items() if b"k00500" <= k < b"k01500"
    )
    assert (memtable.min_lsn, memtable.max_lsn) == (1, 2999)


def test_sorted_keys_lists_are_never_changed_under_a_reader() -> None:
    memtable = Memtable()
    memtable.apply(1, [(b"b", b"1")])
    held = memtable.sorted_keys()
    memtable.apply(2, [(b"a", b"2"), (b"c", b"3")])
    assert held == [b"b"]
    assert memtable.sorted_keys() == [b"a", b"b", b"c"]


def _chunks(items: list[tuple[bytes, bytes | None]], size: int):
    for start in range(0, len(items), size):
        part = items[start : start + size]
        yield [k for k, _ in part], [v for _, v in part]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.binary(min_size=1, max_size=3), st.none() | st.binary(max_size=4), max_size=40),
        min_size=1,
        max_size=5,
    ),
    st.integers(1, 9),
)
def test_merge_matches_newest_wins_model(sources: list[dict[bytes, bytes | None]], size: int) -> None:
    model: dict[bytes, bytes | None] = {}
    for source in reversed(sources):  # the first source is the newest
        model.update(source)
    merged = list(merge_chunks([_chunks(sorted(source.items()), size) for source in sources]))
    flat = [pair for keys, values in merged for pair in zip(keys, values)]
    assert flat == sorted(model.items())
    assert list(live_rows(merged)) == sorted((k, v) for k, v in model.items() if v is not None)
