"""Child of test_switch_guard: sequential async puts into a small-memtable RocksDB dir.

Write i stores key k<i> and is the i+1-th record of a fresh log, so its LSN is i + 1. The WAL
buffer is large and flushed rarely, so only the memtable-switch guard keeps the log ahead of
RocksDB; a second argument switches the guard off (the test's control).
"""

from __future__ import annotations

import sys

from engines import create_engine

engine = create_engine(
    sys.argv[1],
    backend="rocksdb",
    durability="async",
    low_memory=True,
    async_interval_ms=5000,
    wal_buffer_bytes=32 * 2**20,
)
if len(sys.argv) > 2:
    type(engine)._wal_needed_before_apply = lambda self, entries: False
value = b"v" * 1000
print("ready", flush=True)
i = 0
while True:
    engine.put(b"k%09d" % i, value)
    i += 1
