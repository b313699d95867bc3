"""Child process of the SIGKILL crash test: writes in sync mode and reports each acknowledgement.

Usage: crash_writer.py DATA_DIR BACKEND SEED
Prints "ack <n> <kind>" after write n is acknowledged (kind: put, batch, delete). Values are
derived from n so that the parent can tell a whole value from a half-written one.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

from engines import create_engine, open_engine


def value_of(n: int) -> bytes:
    body = (b"value-%08d-" % n) * (1 + n % 50)
    return body + b"#end"


def main() -> None:
    data_dir, backend, seed = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    rng = random.Random(seed)
    if (data_dir / "drconsole.json").exists():
        engine = open_engine(data_dir)
        n = int(sys.argv[4])
    else:
        engine = create_engine(
            data_dir,
            backend=backend,
            durability=os.environ.get("CRASH_DURABILITY", "sync"),
            wal_segment_bytes=256 * 1024,
        )
        n = 0
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    while True:
        n += 1
        roll = rng.random()
        if roll < 0.2:
            # A batch: keys n.0 .. n.k, all or none survive.
            engine.write_batch([(b"b%08d.%d" % (n, i), value_of(n)) for i in range(1 + n % 7)])
            kind = "batch"
        elif roll < 0.25 and n > 10:
            engine.delete(b"p%08d" % (n - 10))
            kind = "delete"
        else:
            engine.put(b"p%08d" % n, value_of(n))
            kind = "put"
        if n % 500 == 0:
            engine.flush()
        out.write(f"ack {n} {kind}\n")
        out.flush()


if __name__ == "__main__":
    main()
