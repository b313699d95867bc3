"""Scrub benchmark: what the background scrub costs a loaded node, and how soon it finds a cold flipped byte.

    .venv/bin/python bench/scrub_bench.py [--engine lsm] [--data-mb 16] [--windows 8] [--clients 16]
                                          [--rate BYTES_PER_SEC] [--no-detect]

One real ``drconsole node serve`` (sync durability) over a data dir of ``--data-mb`` of 1 KiB
values takes PUTs from ``--clients`` HTTP clients (in client processes; each PUT acknowledged once
durable) for the whole run. Meanwhile windows alternate: in a "scrub on" window the node runs one
scrub pass over the whole data dir at ``--rate`` (``POST /admin/scrub``, the background scrub's
code and rate); the "scrub off" window after it lasts as long. Each request is counted in the
window it started in. The peer is therefore the same node, same data, same moment of a shared
machine's load, without the scrub; the figures are throughput and p99 write latency per kind of
window, and their ratio.

Then a byte is flipped in a data block no client reads, on a node with the scrub in the background
at an interval sized so that one pass fits in it, and the time until /health says ``corrupt`` is
measured (the guarantee: within two intervals).

Goal (issue 15): p99 write latency and throughput at most 10 % worse with the scrub on.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from node_bench import percentile, start_node  # noqa: E402  # one way to start a node for the benches

from engines import create_engine  # noqa: E402
from engines.node.client import NodeClient  # noqa: E402
from engines.scrub import DEFAULT_RATE_BYTES  # noqa: E402

Sample = tuple[float, float]  # (monotonic start, seconds)


def build(data_dir: Path, engine: str, megabytes: int) -> None:
    """A data dir of ``megabytes`` of random 1 KiB values, in files (flushed, compactions done)."""
    store = create_engine(data_dir, engine, durability="async")
    for index in range(megabytes * 1024):
        store.put(f"cold{index:08d}".encode(), os.urandom(1024))
    store.flush()
    settle = getattr(store, "wait_for_background", None)
    if settle is not None:
        settle(120)
    store.close()


def _clients(url: str, first: int, clients: int, stop_file: str) -> list[Sample]:
    """One client process: ``clients`` threads PUTting their own keys until ``stop_file`` exists."""
    samples: list[Sample] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        mine: list[Sample] = []
        with NodeClient(url, timeout=30) as client:
            number = 0
            while not os.path.exists(stop_file):
                started = time.monotonic()
                try:
                    client.put(f"hot{index:03d}-{number:08d}".encode(), b"v" * 1024)
                except Exception:  # noqa: BLE001 - a failed write is not a sample
                    continue
                mine.append((started, time.monotonic() - started))
                number += 1
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=worker, args=(first + index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples


def measure(
    url: str, clients: int, windows: int, rate: float, stop_file: Path
) -> tuple[dict[bool, list[float]], dict[bool, float]]:
    """Latencies per kind of window (on/off) and the time spent in each."""
    marks: list[tuple[float, float, bool]] = []
    done = threading.Event()

    def controller() -> None:
        time.sleep(2.0)  # the clients are up and the node warm
        with httpx.Client(timeout=3600) as admin:
            for _ in range(windows):
                started = time.monotonic()
                admin.post(f"{url}/admin/scrub", json={"rate": rate}).raise_for_status()
                ended = time.monotonic()
                marks.append((started, ended, True))
                time.sleep(ended - started)
                marks.append((ended, time.monotonic(), False))
        done.set()
        stop_file.touch()  # the clients stop after their request in flight

    httpx.post(f"{url}/admin/scrub", json={"rate": rate}, timeout=3600).raise_for_status()  # warm the page cache
    processes = max(1, min(4, clients // 4))
    share = clients // processes
    runner = threading.Thread(target=controller)
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        jobs = [pool.apply_async(_clients, (url, index * share, share, str(stop_file))) for index in range(processes)]
        runner.start()
        samples: list[Sample] = []
        try:
            for job in jobs:
                samples += job.get()
        finally:
            stop_file.touch()
    runner.join()
    if not done.is_set() or not marks:
        raise SystemExit("the windows did not finish")
    last = marks[-1][1]
    by_kind: dict[bool, list[float]] = {True: [], False: []}
    for started, seconds in samples:
        if started > last:
            continue
        for low, high, on in marks:
            if low <= started < high:
                by_kind[on].append(seconds)
                break
    spent = {kind: sum(high - low for low, high, on in marks if on == kind) for kind in (True, False)}
    return by_kind, spent


def detection(data_dir: Path, engine: str, rate: float) -> tuple[float, float, float, int]:
    """(seconds from the flip to /health corrupt, the interval used, one pass's duration, bytes a pass reads)."""
    process, url = start_node(data_dir, engine, "--scrub-interval", "0")
    try:
        measured = httpx.post(f"{url}/admin/scrub", json={"rate": rate}, timeout=3600).json()["pass"]
        pass_seconds, read = measured["duration_seconds"], measured["bytes_read"]
    finally:
        process.terminate()
        process.wait(timeout=60)
    interval = max(2.0, math.ceil(pass_seconds * 1.25))
    process, url = start_node(data_dir, engine, "--scrub-interval", str(interval), "--scrub-rate", str(int(rate)))
    try:
        time.sleep(1.0)
        flip_cold_byte(data_dir, engine)
        flipped = time.monotonic()
        while time.monotonic() < flipped + 3 * interval + 60:
            if httpx.get(f"{url}/health", timeout=10).json()["status"] == "corrupt":
                return time.monotonic() - flipped, interval, pass_seconds, read
            time.sleep(0.1)
        return float("nan"), interval, pass_seconds, read
    finally:
        process.terminate()
        process.wait(timeout=60)


def flip_cold_byte(data_dir: Path, engine: str) -> None:
    folder = {"lsm": "sstables", "rocksdb": "rocksdb"}.get(engine)
    if folder is None:
        raise SystemExit("the detection measurement flips a byte in an lsm or rocksdb table")
    table = max((data_dir / folder).glob("*.sst"), key=lambda path: path.stat().st_size)
    offset = table.stat().st_size // 3  # a data block in the middle of the largest table
    with open(table, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="lsm", choices=("lsm", "cow", "rocksdb"))
    parser.add_argument("--data-mb", type=int, default=16)
    parser.add_argument("--windows", type=int, default=6, help="scrub-on windows (each followed by an off one)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE_BYTES, help="bytes/s (default: node serve's)")
    parser.add_argument("--no-detect", action="store_true", help="skip the detection measurement")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="scrub-bench-"))
    try:
        data_dir = work / "node"
        build(data_dir, args.engine, args.data_mb)
        size = sum(path.stat().st_size for path in data_dir.rglob("*") if path.is_file())
        print(
            f"{args.engine}: {size / 2**20:.0f} MiB on disk; scrub rate {args.rate / 2**20:.1f} MiB/s; "
            f"{args.clients} clients; {args.windows} scrub-on windows, each followed by an off one as long"
        )
        process, url = start_node(data_dir, args.engine, "--scrub-interval", "0")
        try:
            latencies, spent = measure(url, args.clients, args.windows, args.rate, work / "stop")
        finally:
            process.terminate()
            process.wait(timeout=60)
        figures = {}
        for on in (False, True):
            figures[on] = (
                len(latencies[on]) / spent[on],
                percentile(latencies[on], 0.99) * 1000,
                percentile(latencies[on], 0.50) * 1000,
            )
            print(
                f"  scrub {'on ' if on else 'off'}: {spent[on]:6.1f} s, {len(latencies[on]):6d} writes, "
                f"{figures[on][0]:7.0f} writes/s  p50 {figures[on][2]:6.2f} ms  p99 {figures[on][1]:6.2f} ms"
            )
        throughput_ratio = figures[True][0] / figures[False][0]
        p99_ratio = figures[True][1] / figures[False][1]
        print(f"throughput: scrub on / off = {throughput_ratio:.3f} ({(1 - throughput_ratio) * 100:+.1f} % worse)")
        print(f"p99 write latency: scrub on / off = {p99_ratio:.3f} ({(p99_ratio - 1) * 100:+.1f} % worse)")
        print(f"goal (<= 10 % worse on both): {'met' if throughput_ratio >= 0.9 and p99_ratio <= 1.1 else 'NOT met'}")
        if not args.no_detect and args.engine != "cow":
            took, interval, pass_seconds, read = detection(data_dir, args.engine, args.rate)
            print(
                f"cold flipped byte found after {took:.1f} s (scrub interval {interval:g} s; one pass over "
                f"{read / 2**20:.0f} MiB at {args.rate / 2**20:.1f} MiB/s takes {pass_seconds:.1f} s; "
                f"bound: two intervals = {2 * interval:g} s -> ratio {took / (2 * interval):.2f})"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
