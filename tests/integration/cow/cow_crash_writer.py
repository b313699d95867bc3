"""Child of the COW mid-commit crash test: batches in sync mode with a tiny dirty budget, so
commits (page writes, intermediate spills, meta writes) run all the time; prints "ack <n>".

Usage: cow_crash_writer.py DATA_DIR FIRST_N
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from engines import Engine, create_engine, open_engine


def batch_of(n: int) -> list[tuple[bytes, bytes | None]]:
    """Write number ``n``: 20 keys of a 3000-key space; some deletes, some overflow values."""
    rng = random.Random(n)
    writes: list[tuple[bytes, bytes | None]] = []
    for _ in range(20):
        key = b"key%04d" % rng.randrange(3000)
        roll = rng.random()
        if roll < 0.15:
            writes.append((key, None))
        else:
            writes.append((key, (b"%d:" % n) * (1 + (400 if roll > 0.95 else rng.randrange(12)))))
    return writes


def create(data_dir: Path) -> Engine:
    return create_engine(
        data_dir,
        backend="cow",
        durability="sync",
        wal_segment_bytes=256 * 1024,
        backend_options={"page_size": 1024, "dirty_budget_bytes": 65536},
    )


def main() -> None:
    data_dir, n = Path(sys.argv[1]), int(sys.argv[2])
    engine = open_engine(data_dir) if data_dir.exists() else create(data_dir)
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    while True:
        n += 1
        engine.write_batch(batch_of(n))
        if n % 97 == 0:
            engine.flush()
        out.write(f"ack {n}\n")
        out.flush()


if __name__ == "__main__":
    main()
