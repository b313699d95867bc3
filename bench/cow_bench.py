"""COW engine at scale: 1M keys of 100 B, memory against the page cache, file size, write amplification.

Figures (goals from issue 3):
  memory      RSS growth of the process while loading and reading 1M keys of 100 B; goal: within
              the page cache (64 MiB) + 50 MB
  file size   data.cow after a full rewrite of every key (random order), against the raw bytes
              (keys + values); goal <= 2x. Also after compact().
  write amp   bytes written to data.cow (and to the WAL) per byte of keys and values written
Throughput against rocksdict is bench/engine_bench.py.

    .venv/bin/python bench/cow_bench.py [--keys 1000000] [--value-size 100]
"""

from __future__ import annotations

import argparse
import gc
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engines import create_engine  # noqa: E402


def rss_mib() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


class PeakRss:
    """Samples the process's RSS every 50 ms; ``peak`` is the highest seen (MiB)."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        process = psutil.Process()
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, process.memory_info().rss / 2**20)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--value-size", type=int, default=100)
    options = parser.parse_args()
    rng = random.Random(11)
    count = options.keys
    order = list(range(count))
    rng.shuffle(order)
    root = Path(tempfile.mkdtemp(prefix="cow-bench-"))
    raw = count * (15 + options.value_size)
    try:
        baseline = rss_mib()
        sampler = PeakRss()
        engine = create_engine(root / "cow", backend="cow", durability="async")
        value = rng.randbytes(options.value_size)
        started = time.perf_counter()
        for first in range(0, count, 1000):
            engine.write_batch([(b"key%012d" % i, value) for i in order[first : first + 1000]])
        engine.flush()
        load_seconds = time.perf_counter() - started
        for i in rng.sample(range(count), min(count, 200_000)):
            engine.get(b"key%012d" % i)
        scanned = sum(1 for _ in engine.scan())
        assert scanned == count
        loaded = rss_mib()
        phases = {"load and reads": sampler.peak - baseline}
        stats = engine.stats()
        cache = stats.details["cache_capacity_bytes"] / 2**20
        print(
            f"{count} keys of {options.value_size} B: loaded in {load_seconds:.1f} s "
            f"({count / load_seconds:,.0f} puts/s, batches of 1000, async)"
        )
        print(
            f"memory: RSS grew {loaded - baseline:.1f} MiB (engine's own figure "
            f"{stats.memory_usage_bytes / 2**20:.1f} MiB); goal <= cache {cache:.0f} MiB + 50 MB "
            f"-> {'ok' if loaded - baseline <= cache + 50 * 1e6 / 2**20 else 'OVER'}"
        )
        size_loaded = (root / "cow" / "data.cow").stat().st_size
        written_before = stats.details["bytes_written"]
        user_before = stats.details["user_bytes_applied"]
        rng.shuffle(order)
        value = rng.randbytes(options.value_size)
        started = time.perf_counter()
        for first in range(0, count, 1000):
            engine.write_batch([(b"key%012d" % i, value) for i in order[first : first + 1000]])
        engine.flush()
        rewrite_seconds = time.perf_counter() - started
        phases["rewrite"] = sampler.peak - baseline
        stats = engine.stats()
        size_rewritten = (root / "cow" / "data.cow").stat().st_size
        written = stats.details["bytes_written"] - written_before
        user = stats.details["user_bytes_applied"] - user_before
        print(
            f"raw data {raw / 2**20:.1f} MiB; data.cow {size_loaded / 2**20:.1f} MiB after the load "
            f"({size_loaded / raw:.2f}x), {size_rewritten / 2**20:.1f} MiB after a full rewrite "
            f"({size_rewritten / raw:.2f}x, goal <= 2x) in {rewrite_seconds:.1f} s"
        )
        print(
            f"write amplification of the rewrite: data.cow {written / user:.2f}x; with the WAL "
            f"{(written + stats.wal_bytes) / user:.2f}x (WAL bytes on disk now: {stats.wal_bytes / 2**20:.1f} MiB)"
        )
        engine.compact()
        phases["compaction"] = sampler.peak - baseline
        size_compacted = (root / "cow" / "data.cow").stat().st_size
        print(f"after compact(): data.cow {size_compacted / 2**20:.1f} MiB ({size_compacted / raw:.2f}x)")
        peak = sampler.stop()
        print(
            f"peak RSS growth over the whole run (load, reads, rewrite, compaction): {peak - baseline:.1f} MiB "
            f"(goal <= {cache + 50 * 1e6 / 2**20:.0f} MiB); peak so far after each phase: "
            + ", ".join(f"{name} {value:.0f} MiB" for name, value in phases.items())
        )
        engine.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
