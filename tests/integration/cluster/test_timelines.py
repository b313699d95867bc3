"""Where two nodes' logs part, and what one holds after that: the bookkeeping salvage and rejoin rely on.

``split_lsn`` and ``divergence`` on timeline histories (PostgreSQL-style ``{epoch, start_lsn}``), and
``read_tail`` on a real engine's WAL: the records after the split, the newest value of each key, and
the value it had at the split.
"""

from __future__ import annotations

from pathlib import Path

from engines import create_engine
from engines.node.state import TimelineEntry
from playbooks.actions.node_cluster import divergence, read_tail, split_lsn


def entries(*pairs: tuple[int, int]) -> list[TimelineEntry]:
    return [TimelineEntry(epoch=epoch, start_lsn=start) for epoch, start in pairs]


def test_the_split_is_the_first_promotion_one_side_lacks() -> None:
    assert split_lsn(entries(), entries((1, 200))) == 200  # the standby was promoted at LSN 200
    assert split_lsn(entries((1, 100)), entries((1, 100), (2, 500))) == 500
    assert split_lsn(entries((1, 100)), entries((1, 100))) is None  # one timeline


def test_two_primaries_promoted_in_one_epoch_part_where_each_promotion_began() -> None:
    assert divergence(entries((1, 100)), "fenced", entries((1, 160)), 1) == 100
    # same history: only the role tells a standby that adopted the epoch from one that promoted itself
    assert divergence(entries((1, 100)), "fenced", entries((1, 100)), 1) == 100
    assert divergence(entries((1, 100)), "standby", entries((1, 100)), 1) is None
    assert divergence(entries((1, 100)), "fenced", entries((1, 100), (2, 300)), 2) == 300


def test_read_tail_gives_the_newest_value_after_the_split_and_the_value_at_it(tmp_path: Path) -> None:
    with create_engine(tmp_path / "db", backend="lsm") as engine:
        for number in range(10):
            engine.put(b"k%d" % number, b"v%d" % number)  # LSNs 1..10
        engine.put(b"k2", b"changed after the split")  # LSN 11
        engine.delete(b"k3")  # LSN 12
        engine.put(b"__drconsole__/ready", b"probe")  # reserved: never salvaged
    tail = read_tail(tmp_path / "db", split=8)
    assert (tail.first_lsn, tail.last_lsn, tail.records, tail.gap) == (9, 13, 5, None)
    assert tail.newest == {b"k8": b"v8", b"k9": b"v9", b"k2": b"changed after the split", b"k3": None}
    assert tail.before == {b"k2": b"v2", b"k3": b"v3"}  # k8, k9 did not exist at the split
