"""Scrub benchmark: what the background scrub costs a loaded node, and how soon it finds a cold flipped byte.

    .venv/bin/python bench/scrub_bench.py [--engine lsm] [--data-mb 64] [--seconds 8] [--rounds 3]
                                          [--clients 16] [--rate BYTES_PER_SEC]

A real ``drconsole node serve`` (sync durability) over a data dir of ``--data-mb`` of 1 KiB values
takes PUTs from ``--clients`` HTTP clients (node_bench.py's load: client processes, each key
acknowledged once durable) for ``--seconds``. The peer, measured in the same run, is the same node
with the scrub off (``--scrub-interval 0``); with it on (``--scrub-interval 1`` at ``--rate``, the
default of ``node serve``) a pass is reading the whole time. Rounds alternate off/on so that the
load of a shared machine falls on both alike; the figures are medians over the rounds.

Then a byte is flipped in a data block no client reads, and the time until /health says
``corrupt`` is measured with an interval sized so that one pass fits in it (the guarantee is "within
two intervals"); the time one pass over the data takes at the rate is printed too.

Goal (issue 15): p99 write latency and throughput at most 10 % worse with the scrub on.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engines import create_engine  # noqa: E402
from engines.scrub import DEFAULT_RATE_BYTES  # noqa: E402
from node_bench import http_load, percentile, start_node  # noqa: E402  # one load generator for the benches


def build(data_dir: Path, engine: str, megabytes: int) -> int:
    """A data dir of ``megabytes`` of random 1 KiB values in files (flushed); its size in bytes."""
    store = create_engine(data_dir, engine, durability="async")
    for index in range(megabytes * 1024):
        store.put(f"cold{index:08d}".encode(), os.urandom(1024))
    store.flush()
    compact = getattr(store, "wait_for_background", None)
    if compact is not None:
        compact(120)
    store.close()
    return sum(path.stat().st_size for path in data_dir.rglob("*") if path.is_file())


def one_run(data_dir: Path, engine: str, scrub: bool, rate: float, clients: int, seconds: float) -> dict[str, float]:
    extra = ["--scrub-interval", "1" if scrub else "0", "--scrub-rate", str(int(rate))]
    process, url = start_node(data_dir, engine, *extra)
    try:
        time.sleep(1.5)  # the first pass starts 1 s after the start
        before = httpx.get(f"{url}/health", timeout=10).json()["scrub"]["bytes_read_total"]
        acked: dict[bytes, int] = {}
        started = time.monotonic()
        latencies = http_load(url, clients, seconds, acked)
        took = time.monotonic() - started
        scrub_state = httpx.get(f"{url}/health", timeout=10).json()["scrub"]
        read = scrub_state["bytes_read_total"] - before
    finally:
        process.terminate()
        process.wait(timeout=60)
    return {"throughput": len(acked) / took, "p99_ms": percentile(latencies, 0.99) * 1000,
            "p50_ms": percentile(latencies, 0.50) * 1000, "scrub_mib_s": read / took / 2**20}


def detection(data_dir: Path, engine: str, rate: float, size: int) -> tuple[float, float, float]:
    """(seconds from the flip to /health corrupt, the interval used, one pass's duration)."""
    pass_seconds = size / rate
    interval = max(2.0, math.ceil(pass_seconds * 1.25))
    process, url = start_node(data_dir, engine, "--scrub-interval", str(interval), "--scrub-rate", str(int(rate)))
    try:
        deadline = time.monotonic() + 3 * interval + 30
        while time.monotonic() < deadline:  # one clean pass first: the node is known sound
            last = httpx.get(f"{url}/health", timeout=10).json()["scrub"]["last_pass"]
            if last and last["complete"]:
                pass_seconds = last["duration_seconds"]
                break
            time.sleep(0.2)
        flip_cold_byte(data_dir, engine)
        flipped = time.monotonic()
        while time.monotonic() < flipped + 3 * interval + 30:
            body = httpx.get(f"{url}/health", timeout=10).json()
            if body["status"] == "corrupt":
                return time.monotonic() - flipped, interval, pass_seconds
            time.sleep(0.1)
        return float("nan"), interval, pass_seconds
    finally:
        process.terminate()
        process.wait(timeout=60)


def flip_cold_byte(data_dir: Path, engine: str) -> None:
    if engine == "lsm":
        table = max((data_dir / "sstables").glob("*.sst"), key=lambda path: path.stat().st_size)
    elif engine == "rocksdb":
        table = max((data_dir / "rocksdb").glob("*.sst"), key=lambda path: path.stat().st_size)
    else:
        raise SystemExit("--detect works on lsm and rocksdb (a cow page must be found reachable first)")
    offset = table.stat().st_size // 3  # a data block in the middle of the largest table
    with open(table, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="lsm", choices=("lsm", "cow", "rocksdb"))
    parser.add_argument("--data-mb", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE_BYTES, help="bytes/s (default: node serve's)")
    parser.add_argument("--no-detect", action="store_true", help="skip the detection measurement")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scrub-bench-"))
    try:
        data_dir = work / "node"
        size = build(data_dir, args.engine, args.data_mb)
        print(f"{args.engine}: {size / 2**20:.0f} MiB on disk; scrub rate {args.rate / 2**20:.1f} MiB/s; "
              f"{args.clients} clients x {args.seconds:g} s, {args.rounds} rounds (off/on alternating)")
        runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        for round_number in range(args.rounds):
            order = (False, True) if round_number % 2 == 0 else (True, False)
            for scrub in order:
                result = one_run(data_dir, args.engine, scrub, args.rate, args.clients, args.seconds)
                runs[scrub].append(result)
                print(f"  round {round_number + 1} scrub {'on ' if scrub else 'off'}: "
                      f"{result['throughput']:7.0f} writes/s  p50 {result['p50_ms']:6.2f} ms  "
                      f"p99 {result['p99_ms']:6.2f} ms  scrub read {result['scrub_mib_s']:.2f} MiB/s")

        def median(scrub: bool, key: str) -> float:
            return statistics.median(run[key] for run in runs[scrub])

        throughput_ratio = median(True, "throughput") / median(False, "throughput")
        p99_ratio = median(True, "p99_ms") / median(False, "p99_ms")
        print(f"throughput: scrub on {median(True, 'throughput'):.0f} writes/s vs off {median(False, 'throughput'):.0f}"
              f" -> ratio {throughput_ratio:.3f} ({(1 - throughput_ratio) * 100:+.1f} % worse)")
        print(f"p99 write latency: scrub on {median(True, 'p99_ms'):.2f} ms vs off {median(False, 'p99_ms'):.2f} ms"
              f" -> ratio {p99_ratio:.3f} ({(p99_ratio - 1) * 100:+.1f} % worse)")
        goal = throughput_ratio >= 0.9 and p99_ratio <= 1.1
        print(f"goal (<= 10 % worse on both): {'met' if goal else 'NOT met'}")
        if not args.no_detect and args.engine != "cow":
            took, interval, pass_seconds = detection(data_dir, args.engine, args.rate, size)
            print(f"cold flipped byte found after {took:.1f} s (interval {interval:g} s; one pass over "
                  f"{size / 2**20:.0f} MiB at {args.rate / 2**20:.1f} MiB/s takes {pass_seconds:.1f} s; "
                  f"bound: two intervals = {2 * interval:g} s -> ratio {took / (2 * interval):.2f})")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
