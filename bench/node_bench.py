"""Node benchmark: PUT throughput and latency over HTTP with sync durability, replication lag under that
load, and failover time, measured whole (kill -9 of the primary -> the first write acknowledged by the
new primary, through detection, fencing, the choice of a standby and the salvage).

    .venv/bin/python bench/node_bench.py [--seconds 10] [--clients 32] [--engine lsm]

The peer measured in the same run is the embedded engine itself (``engine.put`` from the same
number of threads, sync durability, same disk): the ratio says what HTTP hosting costs.

``--reseed-keys N`` (default 20000, 0 skips it) also times bringing up a new standby of a primary
holding N keys two ways: streaming the whole WAL from LSN 1 (the peer) and reseeding from a full
backup (``--backup-repo``) and then streaming only what came after it.
``--failover-runs N`` (default 5, 0 skips it): the whole failover is timed N times by the primary-loss
drill (``drills``): a primary + standby under a client load that retries on the next host;
kill -9 of the primary; the autopilot's fleet snapshot and decision tree (detection: they run at the
moment of the kill, so a monitor polling every P s adds up to P), the failover playbook (fence, the
best standby chosen by LSN, promotion holding client writes, the salvage of the dead primary's tail,
writes released); stopped at the first write the load gets acknowledged by the new primary. The peer,
timed N times in the same run: promote-only (kill -9, then ``POST /admin/promote`` on the known
standby and a PUT), the figure this benchmark used to print as "failover".
Goals (issue 6): failover <= 5 s; steady-state lag under 100 ms at 5k writes/s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from drills.node import free_port, serve_command  # noqa: E402
from engines import create_engine  # noqa: E402
from engines.node.client import NodeClient  # noqa: E402


def start_node(data_dir: Path, engine: str, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        serve_command(engine, data_dir, port, *extra),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/health", timeout=0.5)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.05)
    raise SystemExit(f"node on {url} did not start")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def _client_process(
    url: str, first: int, clients: int, seconds: float
) -> tuple[list[float], dict[bytes, int], list[str]]:
    """One load process: ``clients`` threads, each PUTting its own keys until time is up."""
    latencies: list[float] = []
    acked: dict[bytes, int] = {}
    errors: list[str] = []
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def worker(index: int) -> None:
        mine: list[float] = []
        with NodeClient(url, timeout=10) as client:
            n = 0
            while time.monotonic() < stop:
                key = f"c{index:02d}-{n:07d}".encode()
                started = time.perf_counter()
                try:
                    lsn = client.put(key, b"v" * 100)
                except Exception as exc:  # noqa: BLE001 - a benchmark counts errors, it does not stop
                    errors.append(str(exc))
                    continue
                mine.append(time.perf_counter() - started)
                acked[key] = lsn
                n += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(first + i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, acked, errors


def http_load(url: str, clients: int, seconds: float, acked: dict[bytes, int]) -> list[float]:
    """``clients`` concurrent HTTP clients spread over processes (one Python client process is GIL-bound)."""
    processes = max(1, min(4, clients // 8))
    share = clients // processes
    latencies: list[float] = []
    errors: list[str] = []
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        jobs = [pool.apply_async(_client_process, (url, i * share, share, seconds)) for i in range(processes)]
        for job in jobs:
            got, keys, failed = job.get()
            latencies += got
            acked.update(keys)
            errors += failed
    if errors:
        print(f"  errors: {len(errors)} (first: {errors[0]})")
    return latencies


def embedded_load(path: Path, engine: str, clients: int, seconds: float) -> int:
    store = create_engine(path, engine, durability="sync")
    count = [0] * clients
    stop = time.monotonic() + seconds

    def worker(index: int) -> None:
        n = 0
        while time.monotonic() < stop:
            store.put(f"c{index:02d}-{n:07d}".encode(), b"v" * 100)
            n += 1
        count[index] = n

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    return sum(count)


def wait_caught_up(url: str, lsn: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            try:
                report = client.get(f"{url}/replication").json()
                if report["applied_lsn"] >= lsn:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    raise SystemExit(f"standby {url} did not reach LSN {lsn}")


def reseed_vs_stream(root: Path, engine: str, keys: int) -> None:
    """A new standby by streaming every record vs. by reseeding from a backup (then streaming the rest)."""
    source = create_engine(root / "big", engine, durability="async")  # only the bench's setup is async
    for i in range(keys):
        source.put(f"key-{i:08d}".encode(), b"v" * 200)
    source.close()
    repo = root / "big-repo"
    primary, url = start_node(root / "big", engine, "--backup-repo", str(repo))
    try:
        with NodeClient(url, timeout=600) as client:
            backup = client.admin("backup")
            for i in range(100):
                client.put(f"after-backup-{i}".encode(), b"a")
            last = client.health()["last_lsn"]
        timings = {}
        for label, extra in (("stream", ()), ("reseed", ("--backup-repo", str(repo)))):
            started = time.monotonic()
            standby, standby_url = start_node(root / f"standby-{label}", engine, "--follow", url, *extra)
            wait_caught_up(standby_url, last)
            timings[label] = time.monotonic() - started
            report = httpx.get(f"{standby_url}/replication").json()
            standby.send_signal(signal.SIGTERM)
            standby.wait()
            if label == "reseed":
                assert report["reseed"] and report["reseed"]["state"] == "reseeded", report["reseed"]
        print(
            f"new standby of a primary with {keys:,} keys ({backup['size_bytes']:,}-byte backup): "
            f"reseed from backup + stream {timings['reseed']:.2f} s; peer: stream all WAL {timings['stream']:.2f} s; "
            f"reseed / stream = {timings['reseed'] / timings['stream']:.2f}"
        )
    finally:
        primary.send_signal(signal.SIGTERM)
        primary.wait()


def promote_only(primary: subprocess.Popen[bytes], standby_url: str) -> tuple[float, int]:
    """kill -9 the primary, promote the known standby, time until it takes a write; (seconds, its LSN)."""
    primary.send_signal(signal.SIGKILL)
    primary.wait()
    killed = time.monotonic()
    with NodeClient(standby_url, timeout=10) as client:
        client.promote()
        while True:
            try:
                client.put(b"after-failover", b"1")
                break
            except Exception:  # noqa: BLE001 - not taken yet: retry
                time.sleep(0.01)
        return time.monotonic() - killed, int(client.health()["last_lsn"])


def failover_whole(root: Path, engine: str, runs: int) -> None:
    """The primary-loss drill ``runs`` times (kill -> first acknowledged write on the new primary), and
    promote-only on a fresh pair as many times: medians and the ratio."""
    from drills import run_drill

    whole, full, salvaged, promote = [], [], [], []
    for run in range(runs):
        result = run_drill(
            "primary-loss", engine, writes_before_backup=150, writes_after_backup=150, seed=run, workdir=root
        )
        if result.rto_seconds is None or result.lost_writes:
            print(
                f"  run {run}: not recovered or lost writes ({result.error or result.health}); lost "
                f"{result.lost_writes}"
            )
            continue
        whole.append(result.rto_seconds)
        full.append(result.fault.get("full_recovery_seconds") or 0.0)
        salvaged.append(result.fault.get("lag_at_failure_records") or 0)
        old, old_url = start_node(root / f"pair-{run}-a", engine)
        new, new_url = start_node(root / f"pair-{run}-b", engine, "--follow", old_url)
        with NodeClient(old_url, timeout=10) as client:
            for index in range(300):
                client.put(f"k{index:05d}".encode(), b"v" * 128)
        seconds, _ = promote_only(old, new_url)
        promote.append(seconds)
        new.send_signal(signal.SIGTERM)
        new.wait()
    if not whole or not promote:
        print("failover whole: no run recovered")
        return
    median_whole, median_promote = statistics.median(whole), statistics.median(promote)
    print(
        f"failover whole ({engine}, {len(whole)} runs; kill -9 -> detection, fencing, choice, promotion, "
        f"salvage -> first write acknowledged by the new primary): median {median_whole * 1000:.0f} ms "
        f"(min {min(whole) * 1000:.0f}, max {max(whole) * 1000:.0f}); old primary rebuilt as a standby too: "
        f"median {statistics.median(full) * 1000:.0f} ms; records salvaged per run: median "
        f"{statistics.median(salvaged):.0f}, 0 acknowledged writes lost"
    )
    print(
        f"peer: promote-only (kill -9 -> POST /admin/promote on the known standby -> a PUT), {len(promote)} runs: "
        f"median {median_promote * 1000:.0f} ms; whole / promote-only = {median_whole / median_promote:.1f}x"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--engine", default="lsm", choices=("cow", "lsm", "rocksdb"))
    parser.add_argument("--reseed-keys", type=int, default=20000, metavar="N")
    parser.add_argument("--failover-runs", type=int, default=5, metavar="N")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="node-bench-") as folder:
        root = Path(folder)
        primary, primary_url = start_node(root / "primary", args.engine)
        standby, standby_url = start_node(root / "standby", args.engine, "--follow", primary_url)
        lag_samples: list[tuple[int, float]] = []
        sampling = threading.Event()

        def sample() -> None:
            with httpx.Client(timeout=2) as client:
                while not sampling.is_set():
                    primary_lsn = client.get(f"{primary_url}/health").json()["last_lsn"]
                    report = client.get(f"{standby_url}/replication").json()
                    # Records the primary had committed and the standby had not applied, read at
                    # (nearly) the same moment; seconds as the standby measures them.
                    lag_samples.append((max(0, primary_lsn - report["applied_lsn"]), report["lag_seconds"] or 0.0))
                    sampling.wait(0.1)

        sampler = threading.Thread(target=sample)
        sampler.start()
        acked: dict[bytes, int] = {}
        latencies = http_load(primary_url, args.clients, args.seconds, acked)
        elapsed = args.seconds
        sampling.set()
        sampler.join()
        rate = len(latencies) / elapsed
        print(
            f"HTTP PUT, sync durability, {args.engine}, {args.clients} clients, {elapsed:.1f} s: "
            f"{rate:,.0f} PUT/s, p50 {percentile(latencies, 0.5) * 1000:.2f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1000:.2f} ms"
        )
        records = [lag for lag, _ in lag_samples]
        seconds = [lag for _, lag in lag_samples]
        print(
            f"replication lag under that load: records p50 {statistics.median(records):.0f} / max {max(records)}, "
            f"ms p50 {statistics.median(seconds) * 1000:.1f} / p99 {percentile(seconds, 0.99) * 1000:.1f} / "
            f"max {max(seconds) * 1000:.1f}"
        )
        failover, applied = promote_only(primary, standby_url)
        lost = sum(1 for lsn in acked.values() if lsn >= applied)
        print(
            f"promote-only failover after that load (kill -9 -> promote the known standby -> it took a write): "
            f"{failover * 1000:.0f} ms; acknowledged but unreplicated writes, before any salvage: {lost} of "
            f"{len(acked):,}"
        )
        standby.send_signal(signal.SIGTERM)
        standby.wait()
        embedded = embedded_load(root / "embedded", args.engine, args.clients, args.seconds / 2)
        embedded_rate = embedded / (args.seconds / 2)
        print(
            f"peer: embedded engine.put, same threads and durability: {embedded_rate:,.0f} PUT/s; "
            f"HTTP / embedded = {rate / embedded_rate:.2f}"
        )
        if args.reseed_keys:
            reseed_vs_stream(root, args.engine, args.reseed_keys)
        if args.failover_runs:
            failover_whole(root, args.engine, args.failover_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
