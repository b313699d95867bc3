"""Damaged files: every page type, one meta, both metas, truncation, foreign files, misdirected writes.

Each is detected with the right page number, reads never return wrong data, and read-only opens
and verify never write a byte.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from cow_testkit import create_cow, dir_digest, flip_byte, newest_meta, page_size_of, pages_of_type

from engines import open_engine
from engines.cow.config import CowSettings
from engines.cow.node import Branch, OverflowRef
from engines.cow.page import DATA_FILE, PageType
from engines.cow.store import open_tree
from engines.cow.verify import verify_path
from engines.errors import CorruptionError, UnsupportedFormatError
from engines.reports import VerifyReport

BIG = b"B" * 5000


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A closed data dir: 3000 keys in a three-level tree (1 KiB pages), a few overflow values."""
    path = tmp_path / "d"
    with create_cow(path, backend={"page_size": 1024}) as engine:
        engine.write_batch([(b"key%05d" % i, b"value-%05d" % i) for i in range(3000)])
        engine.write_batch([(b"big%02d" % i, BIG + b"%02d" % i) for i in range(5)])
        engine.flush()
        engine.write_batch([(b"key%05d" % i, None) for i in range(0, 3000, 50)])  # a freelist, a second meta
    return path


def expected(key: bytes) -> bytes | None:
    if key.startswith(b"big"):
        return BIG + key[3:]
    number = int(key[3:])
    return None if number % 50 == 0 else b"value-%05d" % number


def keys_under(data_dir: Path, page: int) -> list[bytes]:
    """Keys stored in the subtree of ``page`` (read before the damage)."""
    tree, _slots = open_tree(data_dir / DATA_FILE, CowSettings(), writable=False, check_page_size=False)
    try:
        stack, keys = [page], []
        while stack:
            node = tree.file.read_node(stack.pop(), tree.hwm)
            if isinstance(node, Branch):
                stack.extend(node.children)  # type: ignore[arg-type]
            else:
                keys.extend(node.keys)
        return keys
    finally:
        tree.close()


def overflow_owner(data_dir: Path) -> tuple[int, bytes]:
    tree, _slots = open_tree(data_dir / DATA_FILE, CowSettings(), writable=False, check_page_size=False)
    try:
        for _key, _value in tree.scan(None, None):
            pass
        for page in pages_of_type(data_dir, PageType.LEAF):
            node = tree.file.read_node(page, tree.hwm)
            for key, value in zip(node.keys, node.values):  # type: ignore[union-attr]
                if isinstance(value, OverflowRef):
                    return value.page, key
        raise AssertionError("no overflow value")
    finally:
        tree.close()


def verify_problems(data_dir: Path) -> list[tuple[str, int | None, str]]:
    report = VerifyReport(backend="cow")
    verify_path(data_dir / DATA_FILE, report)
    return [(problem.kind, problem.offset, problem.detail) for problem in report.problems]


@pytest.mark.parametrize("kind", ["leaf", "branch", "overflow"])
def test_a_corrupt_page_is_reported_by_number_and_never_read_as_data(data_dir: Path, kind: str) -> None:
    if kind == "overflow":
        page, key = overflow_owner(data_dir)
        victims = [key]
    else:
        page = pages_of_type(data_dir, PageType.LEAF if kind == "leaf" else PageType.BRANCH)[1]
        victims = keys_under(data_dir, page)
    flip_byte(data_dir, page)
    before = dir_digest(data_dir)
    with open_engine(data_dir, mode="ro") as engine:
        for key in victims[:5]:
            with pytest.raises(CorruptionError) as caught:
                engine.get(key)
            assert caught.value.offset == page and caught.value.file == DATA_FILE
            assert f"page {page}" in str(caught.value)
        with pytest.raises(CorruptionError):
            list(engine.scan())
        healthy = next(b"key%05d" % i for i in range(1, 3000, 7) if b"key%05d" % i not in victims)
        assert engine.get(healthy) == expected(healthy)  # the rest of the tree still answers
        report = engine.verify()
    assert dir_digest(data_dir) == before  # neither the read-only open nor verify wrote a byte
    assert not report.ok
    problem = report.problems[0]
    assert (problem.kind, problem.offset, problem.file) == ("checksum", page, DATA_FILE)
    assert "page number" in problem.detail or f"page {page}" in problem.detail


@pytest.mark.parametrize("offset", [0, 4, 5, 8, 16, 20, 24, 40, 300, 1023])
def test_any_damaged_byte_of_a_leaf_raises_instead_of_answering(data_dir: Path, offset: int) -> None:
    page = pages_of_type(data_dir, PageType.LEAF)[2]
    victims = keys_under(data_dir, page)
    flip_byte(data_dir, page, offset)
    with open_engine(data_dir, mode="ro") as engine:
        for key in victims:
            with pytest.raises(CorruptionError):
                engine.get(key)


def test_a_corrupt_freelist_stops_a_read_write_open_but_not_reads(data_dir: Path) -> None:
    freelist = newest_meta(data_dir).freelist
    assert freelist
    flip_byte(data_dir, freelist)
    with pytest.raises(CorruptionError) as caught:
        open_engine(data_dir, mode="rw").close()
    assert caught.value.offset == freelist
    with open_engine(data_dir, mode="ro") as engine:
        assert engine.get(b"key00001") == b"value-00001"
        report = engine.verify()
    assert [(p.kind, p.offset) for p in report.problems][:1] == [("checksum", freelist)]


def test_a_corrupt_newest_meta_falls_back_to_the_older_and_the_wal_fills_the_gap(data_dir: Path) -> None:
    newest = newest_meta(data_dir)
    flip_byte(data_dir, newest.slot, 60)
    with open_engine(data_dir, mode="ro") as engine:
        assert engine.stats().details["meta_fallback"] == {str(newest.slot): "checksum mismatch"}
        for key in (b"key00000", b"key00050", b"key00051", b"big03"):
            assert engine.get(key) == expected(key)
        report = engine.verify()
    assert [(p.kind, p.offset) for p in report.problems] == [("meta", newest.slot)]
    with open_engine(data_dir) as engine:
        engine.put(b"more", b"1")
        engine.flush()  # commits write the slot that held the damaged meta
        engine.flush()
        assert engine.verify().ok


def test_both_metas_corrupt_is_an_error_naming_the_file_and_page_and_nothing_is_written(data_dir: Path) -> None:
    flip_byte(data_dir, 0, 60)
    flip_byte(data_dir, 1, 60)
    before = dir_digest(data_dir)
    for mode in ("ro", "rw"):
        with pytest.raises(CorruptionError) as caught:
            open_engine(data_dir, mode=mode)
        assert caught.value.file == DATA_FILE and caught.value.offset == 0
        assert "both meta pages" in str(caught.value)
    after = dir_digest(data_dir)
    after.pop("drconsole.lock", None)
    before.pop("drconsole.lock", None)
    assert after == before
    assert verify_problems(data_dir)[0][:2] == ("meta", 0)


def test_a_truncated_file_names_the_first_missing_page(data_dir: Path) -> None:
    size = page_size_of(data_dir)
    hwm = newest_meta(data_dir).hwm
    with open(data_dir / DATA_FILE, "r+b") as handle:
        handle.truncate((hwm - 3) * size)
    before = dir_digest(data_dir)
    with pytest.raises(CorruptionError, match=f"truncated.*page {hwm - 3}") as caught:
        open_engine(data_dir, mode="ro")
    assert caught.value.offset == hwm - 3
    assert dir_digest(data_dir) == before
    kinds = verify_problems(data_dir)
    assert kinds[0][:2] == ("truncated", hwm - 3)


def test_a_page_written_to_the_wrong_place_is_caught(data_dir: Path) -> None:
    size = page_size_of(data_dir)
    first, second = pages_of_type(data_dir, PageType.LEAF)[:2]
    with open(data_dir / DATA_FILE, "r+b") as handle:
        handle.seek(first * size)
        copy = handle.read(size)
        handle.seek(second * size)
        handle.write(copy)  # a valid page, checksum and all, at the wrong page number
    problems = verify_problems(data_dir)
    assert ("page-header", second) in [(kind, offset) for kind, offset, _detail in problems]
    with open_engine(data_dir, mode="ro") as engine, pytest.raises(CorruptionError, match="misdirected"):
        list(engine.scan())


@pytest.mark.parametrize("content", [b"", b"\x00" * 8192, b"SQLite format 3\x00" + b"\x01" * 5000])
def test_a_file_that_is_not_a_cow_file_is_refused(data_dir: Path, content: bytes) -> None:
    (data_dir / DATA_FILE).write_bytes(content)
    before = dir_digest(data_dir)
    with pytest.raises(UnsupportedFormatError, match="not a drconsole COW file"):
        open_engine(data_dir, mode="ro")
    assert dir_digest(data_dir) == before


def test_read_only_use_writes_nothing_even_with_a_wal_tail_and_a_fallback(data_dir: Path, tmp_path: Path) -> None:
    flip_byte(data_dir, newest_meta(data_dir).slot, 60)
    before = dir_digest(data_dir)
    with open_engine(data_dir, mode="ro") as engine:
        engine.get(b"key00001")
        list(engine.scan())
        engine.stats()
        engine.verify()
        engine.list_snapshots()  # type: ignore[attr-defined]
        engine.checkpoint(tmp_path / "copy")
    assert dir_digest(data_dir) == before
    with open_engine(tmp_path / "copy", mode="ro") as copy:
        assert copy.get(b"key00051") == b"value-00051" and copy.get(b"key00050") is None


def test_verify_lists_leaked_and_double_free_pages(data_dir: Path, tmp_path: Path) -> None:
    """Hand-made damage only a checker finds: pages referenced twice, free and reachable."""
    from engines.cow.freelist import Freelist
    from engines.cow.meta import Meta, encode_meta
    from engines.cow.node import make_run, stamp

    meta = newest_meta(data_dir)
    size = page_size_of(data_dir)
    leaf = pages_of_type(data_dir, PageType.LEAF)[0]
    freelist = Freelist([leaf, leaf + 0])  # a reachable page listed free (twice)
    count, body = freelist.encode()
    run = make_run(PageType.FREELIST, 0, count, meta.txid + 1, body, size)
    stamp(run, meta.hwm)
    with open(data_dir / DATA_FILE, "r+b") as handle:
        handle.seek(meta.hwm * size)
        handle.write(run)
        forged = Meta(
            meta.txid + 1, meta.root, meta.hwm, meta.hwm + 1, meta.lsn, meta.key_count, size, slot=1 - meta.slot
        )
        handle.seek(forged.slot * size)
        handle.write(encode_meta(forged))
    kinds = {kind for kind, _offset, _detail in verify_problems(data_dir)}
    assert {"free-and-reachable", "unreachable"} <= kinds
    shutil.rmtree(tmp_path / "unused", ignore_errors=True)
    assert os.path.getsize(data_dir / DATA_FILE) >= (meta.hwm + 1) * size


def test_verify_of_a_dir_that_cannot_open_reports_both_metas_and_writes_nothing(data_dir: Path) -> None:
    from engines.checks import verify_data_dir

    flip_byte(data_dir, 0, 60)
    flip_byte(data_dir, 1, 60)
    before = dir_digest(data_dir)
    report = verify_data_dir(data_dir)
    assert [(p.kind, p.offset, p.file) for p in report.problems] == [("meta", 0, DATA_FILE), ("meta", 1, DATA_FILE)]
    assert report.checked["wal_records"] > 0
    assert dir_digest(data_dir) == before
