"""An engine workload for the power-cut file system and the check of what a reboot finds.

Keys are overwritten and deleted so that a recovery which resurrects an old value, or loses a
delete, fails the check as surely as one that loses a write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crashkit import Run, Workload

from engines.registry import create_engine, open_engine

KEYS = 24

# Small buffers so that a short workload goes through every commit path: WAL segments sealed
# and created, memtables flushed to tables and compacted, cow commits forced by the budget.
BACKEND_OPTIONS: dict[str, dict[str, Any]] = {
    "lsm": {"memtable_bytes": 4096, "l0_trigger": 2},
    "cow": {"dirty_budget_bytes": 65536},
    "rocksdb": {},
}


def engine_workload(backend: str, durability: str, writes: int = 90, flush_every: int = 30) -> Workload:
    def workload(run: Run) -> None:
        # No WAL kept beyond what the store covers: a store commit that is not durable, with the
        # WAL it covered recycled, loses writes, so the store's own syncs are under test too.
        engine = create_engine(
            run.root / "data",
            backend,
            durability=durability,
            wal_segment_bytes=65536,
            wal_keep_segments=0,
            backend_options=BACKEND_OPTIONS[backend],
        )
        run.ack(("created", None, 0))
        with engine:
            for number in range(writes):
                key = b"k%02d" % (number % KEYS)
                if number % 11 == 10:
                    value, lsn = None, engine.delete(key)
                else:
                    value = b"v%04d-" % number + b"x" * 1500
                    lsn = engine.put(key, value)
                run.sent.append((key, value, lsn))
                if durability == "sync":
                    run.ack((key, value, lsn))
                else:
                    durable = engine.durable_lsn
                    if not run.cut:
                        run.acked = [("created", None, 0)] + [item for item in run.sent if item[2] <= durable]
                if number % flush_every == flush_every - 1:
                    engine.flush()
            engine.compact()  # lsm: retires tables, and their deletion must be durable too
            run.point("before-close")

    return workload


def allowed_values(run: Run) -> dict[bytes, set[bytes | None]]:
    """Per key: the last acknowledged value, or any value attempted after it."""
    acked_lsns = {item[2] for item in run.acked}
    allowed: dict[bytes, set[bytes | None]] = {}
    for key, value, lsn in run.sent:
        if lsn in acked_lsns:
            allowed[key] = {value}
        else:
            allowed.setdefault(key, {None}).add(value)
    return allowed


def check_engine(run: Run) -> None:
    if not run.acked:
        return  # the data dir was never acknowledged as created: nothing is promised
    data: Path = run.root / "data"
    with open_engine(data) as engine:
        wrong = []
        for key, values in sorted(allowed_values(run).items()):
            found = engine.get(key)
            if found not in values:
                wrong.append(
                    f"{key!r}: {found[:6] if found else found!r} not in {sorted(v[:6] if v else b'-' for v in values)}"
                )
        assert not wrong, f"{len(wrong)} keys wrong after recovery: {wrong[:3]}"
        report = engine.verify()
        assert report.ok, f"verify after recovery: {report.problems[:3]}"
