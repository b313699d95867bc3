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

from rocksdict import Options, Rdict, WriteBatch  # noqa: E402

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


class Peer:
    """rocksdict used directly: the same operations, no drconsole layer."""

    def __init__(self, root: Path) -> None:
        # Created, closed and opened again, as our engine's create path does and as every database
        # is after its first restart: rocksdict reads a database that was never reopened about 1.5x
        # faster (measured here: 412k vs 260-267k gets/s on the same data), which is not the
        # state a service runs in.
        Rdict(str(root), Options(raw_mode=True)).close()
        self.db = Rdict(str(root), Options(raw_mode=True))

    def put(self, keys: list[bytes], value: bytes) -> int:
        put = self.db.put
        for key in keys:
            put(key, value)
        return len(keys)

    def batch_put(self, keys: list[bytes], value: bytes) -> int:
        for i in range(0, len(keys), 1000):
            batch = WriteBatch(raw_mode=True)
            for key in keys[i : i + 1000]:
                batch.put(key, value)
            self.db.write(batch)
        return len(keys)

    def get(self, keys: list[bytes]) -> int:
        get = self.db.get
        for key in keys:
            get(key)
        return len(keys)

    def scan(self) -> int:
        return sum(1 for _ in self.db.items())

    def flush(self) -> None:
        self.db.flush()

    def close(self) -> None:
        self.db.close()


class Ours:
    """The same operations through drconsole's engine contract."""

    def __init__(self, backend: str, root: Path) -> None:
        self.engine = create_engine(root, backend=backend, durability="async")

    def put(self, keys: list[bytes], value: bytes) -> int:
        put = self.engine.put
        for key in keys:
            put(key, value)
        return len(keys)

    def batch_put(self, keys: list[bytes], value: bytes) -> int:
        for i in range(0, len(keys), 1000):
            self.engine.write_batch([(key, value) for key in keys[i : i + 1000]])
        return len(keys)

    def get(self, keys: list[bytes]) -> int:
        get = self.engine.get
        for key in keys:
            get(key)
        return len(keys)

    def scan(self) -> int:
        return sum(1 for _ in self.engine.scan())

    def flush(self) -> None:
        self.engine.flush()

    def close(self) -> None:
        self.engine.close()


def compare(
    backend: str, root: Path, keys: list[bytes], value: bytes, lookups: list[bytes], repeat: int
) -> tuple[dict[str, tuple[float, float]], float]:
    """Each operation runs on the peer and on ours in turn, ``repeat`` times; best of each.

    Interleaving means both sides see the same machine load, which on a shared box moves a lot.
    """
    results: dict[str, tuple[float, float]] = {}
    single = keys[:50_000]
    best = {name: [0.0, 0.0] for name in ("put", "batch_put", "get", "scan")}
    disk_mb = 0.0
    for attempt in range(repeat):
        sides = [Peer(root / f"peer-{attempt}"), Ours(backend, root / f"{backend}-{attempt}")]
        for index, side in enumerate(sides):
            best["put"][index] = max(best["put"][index], timed(lambda side=side: side.put(single, value)))
        for index, side in enumerate(sides):
            best["batch_put"][index] = max(
                best["batch_put"][index], timed(lambda side=side: side.batch_put(keys, value))
            )
            side.flush()
        for index, side in enumerate(sides):
            best["get"][index] = max(best["get"][index], timed(lambda side=side: side.get(lookups)))
        for index, side in enumerate(sides):
            best["scan"][index] = max(best["scan"][index], timed(side.scan))
        ours = sides[1]
        assert isinstance(ours, Ours)
        disk_mb = ours.engine.stats().disk_usage_bytes / 2**20
        for side in sides:
            side.close()
        shutil.rmtree(root / f"peer-{attempt}", ignore_errors=True)
        shutil.rmtree(root / f"{backend}-{attempt}", ignore_errors=True)
    for name, (peer, mine) in best.items():
        results[name] = (mine, peer)
    return results, disk_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=200_000)
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--backends", default="rocksdb,lsm,cow")
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    keys, value, lookups = workload(options.keys, options.value_size)
    root = Path(tempfile.mkdtemp(prefix="engine-bench-"))
    try:
        print(
            f"{options.keys} keys, {options.value_size} B values, async durability, "
            f"best of {options.repeat}, peer and ours interleaved"
        )
        print(f"{'backend':<10}{'op':<11}{'ours ops/s':>14}{'rocksdict ops/s':>17}{'ratio':>8}")
        for backend in options.backends.split(","):
            if importlib.util.find_spec(f"engines.{backend}.engine") is None:
                print(f"{backend:<10}(not built)")
                continue
            results, disk_mb = compare(backend, root, keys, value, lookups, options.repeat)
            for op, (ours, peer) in results.items():
                print(f"{backend:<10}{op:<11}{ours:>14,.0f}{peer:>17,.0f}{ours / peer:>8.2f}x")
            raw_mb = options.keys * (options.value_size + len(keys[0])) / 2**20
            print(f"{backend:<10}disk       {disk_mb:.1f} MiB (WAL included) for {raw_mb:.1f} MiB of raw data")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of the bench process: {peak:.0f} MiB")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
