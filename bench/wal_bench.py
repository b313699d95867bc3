"""WAL benchmark: drconsole's WAL against rocksdict used directly, measured in the same run.

Figures (goals from issue 2):
  async append   records/s, one thread, durability="async"            goal >= 300k/s
  sync commit    acknowledged writes/s, 16 threads doing append+sync   goal >= 20k/s
  replay         records/s reading 1M records back with records()      goal <= 2 s
The peer does the same with rocksdict: default writes; WriteOptions(sync=True) from 16 threads;
a full scan of the same 1M records. Ratio = ours / peer (higher is better for us).

    .venv/bin/python bench/wal_bench.py [--records N] [--seconds S] [--threads T]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rocksdict import Options, Rdict, WriteOptions  # noqa: E402

from engines.wal import Op, WalReader, WalWriter  # noqa: E402

__all__ = ["main"]

VALUE_SIZE = 100


def _key(number: int) -> bytes:
    return b"key%012d" % number


def _value() -> bytes:
    return os.urandom(VALUE_SIZE)


def _rocksdict_options() -> Options:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    return options


def ours_async_append(wal_dir: Path, records: int) -> float:
    """Records/s appending ``records`` records; the clock includes the final flush and fsync."""
    value = _value()
    writer = WalWriter(wal_dir, next_lsn=1, durability="async")
    append = writer.append
    put = Op.PUT
    started = time.perf_counter()
    for number in range(records):
        append(put, _key(number), value)
    writer.close()
    return records / (time.perf_counter() - started)


def ours_replay(wal_dir: Path) -> tuple[int, float]:
    """Records read back and the seconds it took."""
    started = time.perf_counter()
    count = 0
    for _record in WalReader(wal_dir).records():
        count += 1
    return count, time.perf_counter() - started


def _run_threads(threads: int, seconds: float, work: Callable[[int, float], int]) -> float:
    """Run ``work(thread_number, deadline)`` on ``threads`` threads; return operations/s."""
    counts = [0] * threads
    deadline = time.perf_counter() + seconds

    def run(number: int) -> None:
        counts[number] = work(number, deadline)

    workers = [threading.Thread(target=run, args=(number,)) for number in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - started)


def ours_sync_commit(wal_dir: Path, threads: int, seconds: float) -> tuple[float, float]:
    """Acknowledged (fsynced) writes/s with ``threads`` writers; and writes per fdatasync."""
    value = _value()
    writer = WalWriter(wal_dir, next_lsn=1, durability="sync")

    def work(number: int, deadline: float) -> int:
        done = 0
        base = number << 40
        while time.perf_counter() < deadline:
            lsn = writer.append(Op.PUT, _key(base + done), value)
            writer.sync(lsn)
            done += 1
        return done

    rate = _run_threads(threads, seconds, work)
    writes = writer.last_lsn
    fsyncs = max(writer.fsync_count, 1)
    writer.close()
    return rate, writes / fsyncs


def peer_async_put(path: Path, records: int) -> float:
    value = _value()
    db = Rdict(str(path), _rocksdict_options())
    put = db.put
    started = time.perf_counter()
    for number in range(records):
        put(_key(number), value)
    db.flush_wal(True)  # same end point as our close(): the log is on disk
    rate = records / (time.perf_counter() - started)
    db.close()
    return rate


def peer_scan(path: Path) -> tuple[int, float]:
    db = Rdict(str(path), _rocksdict_options())
    started = time.perf_counter()
    count = 0
    for _item in db.items():
        count += 1
    elapsed = time.perf_counter() - started
    db.close()
    return count, elapsed


def peer_sync_put(path: Path, threads: int, seconds: float) -> float:
    value = _value()
    db = Rdict(str(path), _rocksdict_options())
    sync_writes = WriteOptions()
    sync_writes.sync = True

    def work(number: int, deadline: float) -> int:
        done = 0
        base = number << 40
        while time.perf_counter() < deadline:
            db.put(_key(base + done), value, sync_writes)
            done += 1
        return done

    rate = _run_threads(threads, seconds, work)
    db.close()
    return rate


def _row(name: str, ours: str, peer: str, ratio: float, goal: str, verdict: str) -> str:
    return f"{name:<28} {ours:>14} {peer:>14} {ratio:>7.2f}x  {goal:<20} {verdict}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000, help="records appended and replayed")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each sync run")
    parser.add_argument("--threads", type=int, default=16, help="writer threads of the sync runs")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="wal-bench-") as temp:
        root = Path(temp)
        print(f"records={args.records} value={VALUE_SIZE} B threads={args.threads} in {root}", flush=True)
        append_rate = ours_async_append(root / "ours-async" / "wal", args.records)
        print(f"  ours async append: {append_rate:,.0f} records/s", flush=True)
        replayed, replay_seconds = ours_replay(root / "ours-async" / "wal")
        print(f"  ours replay: {replayed:,} records in {replay_seconds:.2f} s", flush=True)
        peer_append_rate = peer_async_put(root / "peer-async", args.records)
        print(f"  peer async put: {peer_append_rate:,.0f} records/s", flush=True)
        scanned, peer_scan_seconds = peer_scan(root / "peer-async")
        print(f"  peer scan: {scanned:,} records in {peer_scan_seconds:.2f} s", flush=True)
        sync_rate, per_fsync = ours_sync_commit(root / "ours-sync" / "wal", args.threads, args.seconds)
        print(f"  ours sync: {sync_rate:,.0f} writes/s ({per_fsync:.1f} writes per fdatasync)", flush=True)
        peer_sync_rate = peer_sync_put(root / "peer-sync", args.threads, args.seconds)
        print(f"  peer sync: {peer_sync_rate:,.0f} writes/s", flush=True)

    replay_rate = replayed / replay_seconds
    peer_scan_rate = scanned / peer_scan_seconds
    goals = [
        append_rate >= 300_000,
        sync_rate >= 20_000,
        replay_seconds * 1_000_000 / max(replayed, 1) <= 2.0,
    ]
    print()
    print(f"{'figure':<28} {'ours':>14} {'rocksdict':>14} {'ratio':>8}  {'goal':<20} verdict")
    print(_row("async append (rec/s)", f"{append_rate:,.0f}", f"{peer_append_rate:,.0f}",
               append_rate / peer_append_rate, ">= 300,000/s", "ok" if goals[0] else "MISSED"))
    print(_row(f"sync {args.threads} writers (acks/s)", f"{sync_rate:,.0f}", f"{peer_sync_rate:,.0f}",
               sync_rate / peer_sync_rate, ">= 20,000/s", "ok" if goals[1] else "MISSED"))
    print(_row("replay 1M (rec/s)", f"{replay_rate:,.0f}", f"{peer_scan_rate:,.0f}",
               replay_rate / peer_scan_rate, "<= 2 s per 1M", "ok" if goals[2] else "MISSED"))
    print(f"replay of {replayed:,} records: {replay_seconds:.2f} s (peer: full scan of the same records)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
