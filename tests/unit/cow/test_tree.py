"""The tree on its own (no WAL): buffered writes, partial and full commits, reopen, verify."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from engines.cow.build import build_file
from engines.cow.commit import commit
from engines.cow.config import CowSettings
from engines.cow.page import DATA_FILE
from engines.cow.store import open_tree
from engines.cow.tree import CowTree
from engines.cow.verify import verify_path
from engines.errors import InvalidArgumentError, ReadOnlyError
from engines.reports import VerifyReport


def new_tree(tmp_path: Path, **settings: int) -> tuple[CowTree, CowSettings]:
    config = CowSettings(**settings)  # type: ignore[arg-type]
    build_file(tmp_path / DATA_FILE, [], page_size=config.page_size, lsn=0)
    tree, _slots = open_tree(tmp_path / DATA_FILE, config, writable=True)
    return tree, config


def verified(path: Path) -> VerifyReport:
    report = VerifyReport(backend="cow")
    verify_path(path / DATA_FILE, report)
    assert report.ok, report.problems
    return report


def random_batch(rng: random.Random, space: int, big_every: int = 20) -> list[tuple[bytes, bytes | None]]:
    batch: list[tuple[bytes, bytes | None]] = []
    for _ in range(rng.randint(1, 200)):
        key = b"k%06d" % rng.randrange(space)
        roll = rng.random()
        if roll < 0.25:
            batch.append((key, None))
        elif roll < 1 / big_every:
            batch.append((key, rng.randbytes(rng.randint(1500, 6000))))
        else:
            batch.append((key, rng.randbytes(rng.randint(0, 90))))
    return batch


@pytest.mark.parametrize(
    "settings",
    [
        {"page_size": 1024},
        {"page_size": 4096, "max_keys_per_node": 8},
        {"page_size": 4096, "dirty_budget_bytes": 65536},
    ],
)
def test_random_batches_with_partial_and_full_commits_match_a_dict(tmp_path: Path, settings: dict[str, int]) -> None:
    rng = random.Random(str(settings))
    tree, config = new_tree(tmp_path, **settings)
    model: dict[bytes, bytes] = {}
    lsn = 0
    for step in range(120):
        batch = random_batch(rng, 3000)
        lsn += 1
        tree.apply(batch, lsn)
        for key, value in batch:
            if value is None:
                model.pop(key, None)
            else:
                model[key] = value
        if step % 5 == 0:
            commit(tree, lsn, chunk=rng.choice([50, 400, None]))
        if step % 17 == 0:
            assert list(tree.scan(None, None)) == sorted(model.items())
            low, high = sorted([b"k%06d" % rng.randrange(3000), b"k%06d" % rng.randrange(3000)])
            assert list(tree.scan(low, high)) == sorted((k, v) for k, v in model.items() if low <= k < high)
    for key in rng.sample(sorted(model), 50):
        assert tree.get(key) == model[key]
    while commit(tree, lsn, chunk=300):
        pass
    assert tree.meta.lsn == lsn and not tree.buffer
    assert tree.key_count == len(model)
    tree.close()
    verified(tmp_path)
    reopened, _slots = open_tree(tmp_path / DATA_FILE, config, writable=False)
    assert list(reopened.scan(None, None)) == sorted(model.items())
    reopened.close()


def test_a_partial_commit_claims_only_the_lsn_before_the_oldest_write_left(tmp_path: Path) -> None:
    tree, _config = new_tree(tmp_path)
    tree.apply([(b"m", b"1")], 1)
    tree.apply([(b"a", b"2")], 2)
    tree.apply([(b"z", b"3")], 3)
    tree.apply([(b"m", b"4")], 4)  # rewrites a key first buffered at LSN 1
    assert commit(tree, 4, chunk=1)  # takes "a" (the first key): "m" from LSN 1 stays
    assert tree.meta.lsn == 0
    assert commit(tree, 4, chunk=1)  # takes "m": the oldest left is "z" at LSN 3
    assert tree.meta.lsn == 2
    assert commit(tree, 4, chunk=1)
    assert tree.meta.lsn == 4 and tree.get(b"m") == b"4"


def test_deleting_everything_leaves_an_empty_sound_tree(tmp_path: Path) -> None:
    tree, _config = new_tree(tmp_path, page_size=1024)
    keys = [b"key%05d" % i for i in range(3000)]
    tree.apply([(key, b"v" * 40) for key in keys], 1)
    commit(tree, 1)
    tree.apply([(key, None) for key in keys], 2)
    commit(tree, 2)
    assert list(tree.scan(None, None)) == [] and tree.key_count == 0
    tree.close()
    verified(tmp_path)


def test_deleting_absent_keys_rewrites_nothing(tmp_path: Path) -> None:
    tree, _config = new_tree(tmp_path)
    tree.apply([(b"key%05d" % i, b"v") for i in range(2000)], 1)
    commit(tree, 1)
    written = tree.file.bytes_written
    tree.apply([(b"nope%05d" % i, None) for i in range(500)], 2)
    commit(tree, 2)
    assert tree.file.bytes_written - written <= 3 * tree.page_size  # freelist and meta only
    tree.close()


def test_commits_reuse_freed_pages_so_rewrites_do_not_grow_the_file(tmp_path: Path) -> None:
    tree, _config = new_tree(tmp_path)
    keys = [b"key%06d" % i for i in range(20000)]
    for round_number in range(8):
        tree.apply([(key, b"%d" % round_number * 20) for key in keys], round_number + 1)
        while commit(tree, round_number + 1, chunk=5000):
            pass
    sizes = (tmp_path / DATA_FILE).stat().st_size
    raw = sum(len(key) + 20 for key in keys)
    assert sizes < 2 * raw
    tree.close()
    verified(tmp_path)


def test_build_file_refuses_unsorted_records(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError):
        build_file(tmp_path / DATA_FILE, [(b"b", b""), (b"a", b"")], page_size=4096, lsn=0)
    assert not (tmp_path / DATA_FILE).exists()


def test_build_file_makes_a_packed_sound_tree(tmp_path: Path) -> None:
    records = [(b"key%06d" % i, b"x" * (3000 if i % 97 == 0 else 50)) for i in range(30000)]
    meta = build_file(tmp_path / DATA_FILE, records, page_size=4096, lsn=17)
    assert meta.key_count == 30000 and meta.lsn == 17
    report = verified(tmp_path)
    assert report.checked["keys"] == 30000
    tree, _slots = open_tree(tmp_path / DATA_FILE, CowSettings(), writable=False)
    assert list(tree.scan(b"key000100", b"key000105")) == records[100:105]
    tree.close()


def test_a_read_only_tree_refuses_writes(tmp_path: Path) -> None:
    build_file(tmp_path / DATA_FILE, [], page_size=4096, lsn=0)
    tree, _slots = open_tree(tmp_path / DATA_FILE, CowSettings(), writable=False)
    with pytest.raises(ReadOnlyError):
        tree.apply([(b"a", b"b")], 1)
    tree.close()
