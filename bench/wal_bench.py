"""WAL benchmark: drconsole's WAL against rocksdict used directly, measured in the same run.

Figures (goals from issue 2):
  async append   records/s, one thread, durability="async"            goal >= 300k/s
  sync commit    acknowledged writes/s, 16 threads doing append+sync   goal >= 20k/s
  replay         seconds to read 1M records back with records()       goal <= 2 s
The peer does the same with rocksdict: default writes; WriteOptions(sync=True) from 16 threads;
a full scan of the same 1M records. Ratio = ours / peer (above 1: we are faster).

Each figure is the best of --repeat runs, for both sides alike. Single-threaded figures also
show the rate per CPU second of the process: on a shared machine the wall clock measures other
people's load as much as ours, the CPU time does not.

    .venv/bin/python bench/wal_bench.py [--records N] [--seconds S] [--threads T] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rocksdict import Options, Rdict, WriteOptions  # noqa: E402

from engines.wal import Op, WalReader, WalWriter  # noqa: E402

__all__ = ["main"]

VALUE_SIZE = 100


@dataclass
class Measure:
    """Operations done, wall seconds and process CPU seconds of one measurement."""

    operations: int
    wall: float
    cpu: float

    @property
    def rate(self) -> float:
        return self.operations / self.wall

    @property
    def cpu_rate(self) -> float:
        return self.operations / max(self.cpu, 1e-9)


class _Clock:
    def __enter__(self) -> _Clock:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def measure(self, operations: int) -> Measure:
        return Measure(operations, self.wall, self.cpu)


def _key(number: int) -> bytes:
    return b"key%012d" % number


def _rocksdict_options() -> Options:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    return options


def ours_async_append(wal_dir: Path, records: int) -> Measure:
    """Append ``records`` records; the clock includes the final flush and fsync (close)."""
    value = os.urandom(VALUE_SIZE)
    writer = WalWriter(wal_dir, next_lsn=1, durability="async")
    append = writer.append
    put = Op.PUT
    with _Clock() as clock:
        for number in range(records):
            append(put, _key(number), value)
        writer.close()
    return clock.measure(records)


def ours_replay(wal_dir: Path) -> Measure:
    count = 0
    with _Clock() as clock:
        for _record in WalReader(wal_dir).records():
            count += 1
    return clock.measure(count)


def peer_async_put(path: Path, records: int) -> Measure:
    value = os.urandom(VALUE_SIZE)
    db = Rdict(str(path), _rocksdict_options())
    put = db.put
    with _Clock() as clock:
        for number in range(records):
            put(_key(number), value)
        db.flush_wal(True)  # the same end point as our close(): the log is on disk
    db.close()
    return clock.measure(records)


def peer_scan(path: Path) -> Measure:
    db = Rdict(str(path), _rocksdict_options())
    count = 0
    with _Clock() as clock:
        for _item in db.items():
            count += 1
    db.close()
    return clock.measure(count)


def _run_threads(threads: int, seconds: float, work: Callable[[int, float], int]) -> Measure:
    """Run ``work(thread_number, deadline)`` on ``threads`` threads."""
    counts = [0] * threads
    deadline = time.perf_counter() + seconds

    def run(number: int) -> None:
        counts[number] = work(number, deadline)

    workers = [threading.Thread(target=run, args=(number,)) for number in range(threads)]
    with _Clock() as clock:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    return clock.measure(sum(counts))


def ours_sync_commit(wal_dir: Path, threads: int, seconds: float) -> tuple[Measure, float]:
    """Acknowledged (fsynced) writes with ``threads`` writers; and writes per fdatasync."""
    value = os.urandom(VALUE_SIZE)
    writer = WalWriter(wal_dir, next_lsn=1, durability="sync")

    def work(number: int, deadline: float) -> int:
        done = 0
        base = number << 40
        while time.perf_counter() < deadline:
            lsn = writer.append(Op.PUT, _key(base + done), value)
            writer.sync(lsn)
            done += 1
        return done

    measure = _run_threads(threads, seconds, work)
    per_fsync = writer.last_lsn / max(writer.fsync_count, 1)
    writer.close()
    return measure, per_fsync


def peer_sync_put(path: Path, threads: int, seconds: float) -> Measure:
    value = os.urandom(VALUE_SIZE)
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

    measure = _run_threads(threads, seconds, work)
    db.close()
    return measure


def _best(current: Measure | None, new: Measure) -> Measure:
    return new if current is None or new.rate > current.rate else current


def _row(name: str, ours: str, peer: str, ratio: float, goal: str, verdict: str) -> str:
    return f"{name:<30} {ours:>12} {peer:>12} {ratio:>7.2f}x  {goal:<16} {verdict}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000, help="records appended and replayed")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each sync run")
    parser.add_argument("--threads", type=int, default=16, help="writer threads of the sync runs")
    parser.add_argument("--repeat", type=int, default=3, help="runs of everything; the best of each is shown")
    args = parser.parse_args(argv)

    append = replay = sync = peer_append = peer_scanned = peer_sync = None
    per_fsync = 0.0
    with tempfile.TemporaryDirectory(prefix="wal-bench-") as temp:
        root = Path(temp)
        print(
            f"records={args.records:,} value={VALUE_SIZE} B threads={args.threads} repeat={args.repeat} "
            f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f}",
            flush=True,
        )
        for run in range(args.repeat):
            ours_dir = root / f"ours-async-{run}" / "wal"
            append = _best(append, ours_async_append(ours_dir, args.records))
            replay = _best(replay, ours_replay(ours_dir))
            peer_dir = root / f"peer-async-{run}"
            peer_append = _best(peer_append, peer_async_put(peer_dir, args.records))
            peer_scanned = _best(peer_scanned, peer_scan(peer_dir))
            measured, batch = ours_sync_commit(root / f"ours-sync-{run}" / "wal", args.threads, args.seconds)
            if sync is None or measured.rate > sync.rate:
                sync, per_fsync = measured, batch
            peer_sync = _best(peer_sync, peer_sync_put(root / f"peer-sync-{run}", args.threads, args.seconds))
            for path in (ours_dir.parent, peer_dir, root / f"ours-sync-{run}", root / f"peer-sync-{run}"):
                shutil.rmtree(path)
            print(
                f"  run {run + 1}/{args.repeat}: ours append {append.rate:,.0f}/s replay {replay.wall:.2f} s "
                f"sync {sync.rate:,.0f}/s | rocksdict put {peer_append.rate:,.0f}/s scan {peer_scanned.wall:.2f} s "
                f"sync {peer_sync.rate:,.0f}/s   (best so far)",
                flush=True,
            )
    assert append and replay and sync and peer_append and peer_scanned and peer_sync

    replay_seconds_per_million = replay.wall * 1_000_000 / max(replay.operations, 1)
    print()
    print(f"{'figure':<30} {'ours':>12} {'rocksdict':>12} {'ratio':>8}  {'goal':<16} verdict")
    print(
        _row(
            "async append, records/s",
            f"{append.rate:,.0f}",
            f"{peer_append.rate:,.0f}",
            append.rate / peer_append.rate,
            ">= 300,000",
            "ok" if append.rate >= 300_000 else "MISSED",
        )
    )
    print(
        _row(
            "  per CPU second",
            f"{append.cpu_rate:,.0f}",
            f"{peer_append.cpu_rate:,.0f}",
            append.cpu_rate / peer_append.cpu_rate,
            "",
            "",
        )
    )
    print(
        _row(
            f"sync, {args.threads} writers, acks/s",
            f"{sync.rate:,.0f}",
            f"{peer_sync.rate:,.0f}",
            sync.rate / peer_sync.rate,
            ">= 20,000",
            "ok" if sync.rate >= 20_000 else "MISSED",
        )
    )
    print(
        _row(
            "replay, records/s",
            f"{replay.rate:,.0f}",
            f"{peer_scanned.rate:,.0f}",
            replay.rate / peer_scanned.rate,
            "",
            "",
        )
    )
    print(
        _row(
            "  per CPU second",
            f"{replay.cpu_rate:,.0f}",
            f"{peer_scanned.cpu_rate:,.0f}",
            replay.cpu_rate / peer_scanned.cpu_rate,
            "",
            "",
        )
    )
    print(
        _row(
            "replay of 1M, seconds",
            f"{replay_seconds_per_million:.2f}",
            f"{peer_scanned.wall * 1_000_000 / max(peer_scanned.operations, 1):.2f}",
            peer_scanned.wall / replay.wall,
            "<= 2 s",
            "ok" if replay_seconds_per_million <= 2 else "MISSED",
        )
    )
    print(
        f"sync: {per_fsync:.1f} writes per fdatasync. Replay peer: a full scan of the same records "
        f"(rocksdict items()); ratio of seconds is peer/ours. Best of {args.repeat} runs each."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
