"""Engine throughput through drconsole's contract, against rocksdict used directly in the same run.

For each backend: single puts, batched puts (1000 per batch), random point gets and a full
ordered scan, with ``async`` durability (the peer writes without sync as well). Prints ops/s and
the ratio to raw rocksdict. Goals (issues 2-4): rocksdb backend >= 0.7x on put and get; cow put
>= 0.3x, get/scan >= 0.5x; lsm put >= 0.5x, get >= 0.3x, scan >= 0.5x.

Usage: python bench/engine_bench.py [--keys 200000] [--backends rocksdb,lsm,cow]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rocksdict import Options, Rdict, ReadOptions, WriteBatch  # noqa: E402

from engines import create_engine  # noqa: E402


def timed(action: Callable[[], int]) -> float:
    started = time.perf_counter()
    count = action()
    return count / (time.perf_counter() - started)


def workload(keys: int, value_size: int) -> tuple[list[bytes], bytes, list[bytes]]:
    rng = random.Random(7)
    all_keys = [b"key%012d" % i for i in range(keys)]
    shuffled = all_keys[:]
    rng.shuffle(shuffled)
    return shuffled, rng.randbytes(value_size), rng.sample(all_keys, min(keys, 100_000))


def bench_peer(root: Path, keys: list[bytes], value: bytes, lookups: list[bytes]) -> dict[str, float]:
    figures = {}
    db = Rdict(str(root / "peer-single"), Options(raw_mode=True))
    figures["put"] = timed(lambda: [db.put(k, value) for k in keys[:50_000]] and 50_000)
    db.close()
    db = Rdict(str(root / "peer"), Options(raw_mode=True))

    def batched() -> int:
        for i in range(0, len(keys), 1000):
            batch = WriteBatch(raw_mode=True)
            for key in keys[i:i + 1000]:
                batch.put(key, value)
            db.write(batch)
        return len(keys)

    figures["batch_put"] = timed(batched)
    db.flush()
    figures["get"] = timed(lambda: [db.get(k) for k in lookups] and len(lookups))

    def scan() -> int:
        iterator = db.iter(ReadOptions())
        iterator.seek_to_first()
        count = 0
        while iterator.valid():
            iterator.key(), iterator.value()
            iterator.next()
            count += 1
        return count

    figures["scan"] = timed(scan)
    figures["scan_items"] = timed(lambda: sum(1 for _ in db.items()))
    figures["scan"] = max(figures["scan"], figures.pop("scan_items"))
    db.close()
    return figures


def bench_ours(backend: str, root: Path, keys: list[bytes], value: bytes,
               lookups: list[bytes]) -> dict[str, float]:
    figures = {}
    with create_engine(root / f"{backend}-single", backend=backend, durability="async") as engine:
        figures["put"] = timed(lambda: [engine.put(k, value) for k in keys[:50_000]] and 50_000)
    engine = create_engine(root / backend, backend=backend, durability="async")

    def batched() -> int:
        for i in range(0, len(keys), 1000):
            engine.write_batch([(key, value) for key in keys[i:i + 1000]])
        return len(keys)

    figures["batch_put"] = timed(batched)
    engine.flush()
    figures["get"] = timed(lambda: [engine.get(k) for k in lookups] and len(lookups))
    figures["scan"] = timed(lambda: sum(1 for _ in engine.scan()))
    stats = engine.stats()
    figures["disk_mb"] = stats.disk_usage_bytes / 2**20
    engine.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=200_000)
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--backends", default="rocksdb,lsm,cow")
    options = parser.parse_args()
    keys, value, lookups = workload(options.keys, options.value_size)
    root = Path(tempfile.mkdtemp(prefix="engine-bench-"))
    try:
        peer = bench_peer(root, keys, value, lookups)
        print(f"{options.keys} keys, {options.value_size} B values, async durability")
        print(f"{'backend':<10}{'op':<11}{'ours ops/s':>14}{'rocksdict ops/s':>17}{'ratio':>8}")
        for backend in options.backends.split(","):
            if importlib.util.find_spec(f"engines.{backend}.engine") is None:
                print(f"{backend:<10}(not built)")
                continue
            ours = bench_ours(backend, root, keys, value, lookups)
            for op in ("put", "batch_put", "get", "scan"):
                print(f"{backend:<10}{op:<11}{ours[op]:>14,.0f}{peer[op]:>17,.0f}{ours[op] / peer[op]:>8.2f}x")
            raw_mb = options.keys * (options.value_size + len(keys[0])) / 2**20
            print(f"{backend:<10}disk       {ours['disk_mb']:.1f} MiB for {raw_mb:.1f} MiB of raw data")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of the bench process: {peak:.0f} MiB")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
