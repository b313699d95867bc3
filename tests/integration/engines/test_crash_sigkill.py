"""SIGKILL crash test: a real child writes in sync mode; kill -9 at random moments; nothing acked is lost.

Each round restarts the writer on the same data dir, so recovery after recovery is exercised, for a
chain of CHAIN rounds; then the next chain starts on a fresh data dir. Every round still checks every
write acknowledged in its chain (and each was checked after every kill it lived through); the
bound keeps a round's re-verification from growing with the run: 200 rounds on one ever-growing
dir took over 20 minutes on the slowest backend. ``make test`` runs 20 rounds per backend (one
chain), ``make test-all`` 200 (ten chains).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support import SLOW

from engines import open_engine

WRITER = Path(__file__).with_name("crash_writer.py")
ROUNDS = 200 if SLOW else 20
CHAIN = 20  # rounds of recovery-after-recovery on one data dir


def value_of(n: int) -> bytes:
    return (b"value-%08d-" % n) * (1 + n % 50) + b"#end"


def batch_keys(n: int) -> list[bytes]:
    return [b"b%08d.%d" % (n, i) for i in range(1 + n % 7)]


def run_round(data_dir: Path, backend: str, seed: int, start: int, rng: random.Random) -> list[tuple[int, str]]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.Popen(
        [sys.executable, str(WRITER), str(data_dir), backend, str(seed), str(start)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert child.stdout is not None and child.stderr is not None
    # One raw reader from the first byte: a buffered readline() would swallow acks past "ready".
    chunks: list[bytes] = []
    fd = child.stdout.fileno()
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: os.read(fd, 65536), b"")))
    reader.start()
    started = time.monotonic()
    while b"ready\n" not in b"".join(chunks)[:6]:
        if child.poll() is not None or time.monotonic() - started > 60:
            reader.join(timeout=5)
            raise AssertionError(f"writer did not start: {child.stderr.read().decode(errors='replace')}")
        time.sleep(0.005)
    time.sleep(rng.uniform(0.02, 0.5))
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    reader.join()
    buffer = b"".join(chunks).decode()
    acks: list[tuple[int, str]] = []
    for line in buffer.split("\n")[:-1]:  # complete lines only: the kill may cut the last one
        parts = line.split()
        if len(parts) == 3 and parts[0] == "ack" and parts[2] in ("put", "batch", "delete"):
            acks.append((int(parts[1]), parts[2]))
    return acks


@pytest.mark.timeout(900)
def test_sigkill_loses_no_acknowledged_write(tmp_path: Path, backend: str) -> None:
    rng = random.Random(1234)
    total_acks = 0
    for round_number in range(ROUNDS):
        if round_number % CHAIN == 0:  # a fresh data dir: what the next chain must keep starts empty
            data_dir = tmp_path / f"data-{round_number // CHAIN}"
            put_alive: set[int] = set()
            batches: set[int] = set()
            deleted: set[int] = set()
            start = 0
        acks = run_round(data_dir, backend, rng.randrange(1 << 30), start, rng)
        total_acks += len(acks)
        for n, kind in acks:
            if kind == "put":
                put_alive.add(n)
            elif kind == "batch":
                batches.add(n)
            else:
                deleted.add(n - 10)
                put_alive.discard(n - 10)
        last = max([start] + [n for n, _ in acks])
        in_flight = last + 1  # the write the child was in when killed: may be there, whole, or not
        with open_engine(data_dir, mode="rw") as engine:
            for n in sorted(put_alive):
                found_value = engine.get(b"p%08d" % n)
                if found_value is None and n == in_flight - 10:
                    continue  # the write in flight at the kill may have been a delete of this key
                assert found_value == value_of(n), f"round {round_number}: acked put {n} lost"
            for n in deleted:
                assert engine.get(b"p%08d" % n) is None, f"round {round_number}: acked delete of {n} undone"
            for n in batches:
                for key in batch_keys(n):
                    assert engine.get(key) == value_of(n), f"round {round_number}: acked batch {n} lost {key!r}"
            present = [engine.get(key) for key in batch_keys(in_flight)]
            assert all(v is None for v in present) or all(v == value_of(in_flight) for v in present), (
                f"round {round_number}: batch {in_flight} is half there"
            )
            flying = engine.get(b"p%08d" % in_flight)
            assert flying in (None, value_of(in_flight)), f"round {round_number}: torn value for {in_flight}"
            if in_flight > 10 and flying is None and engine.get(b"p%08d" % (in_flight - 10)) is None:
                deleted.add(in_flight - 10)  # an unacked delete that landed: fine, remember it
                put_alive.discard(in_flight - 10)
            if flying is not None:
                put_alive.add(in_flight)
            if present and present[0] is not None:
                batches.add(in_flight)
            expected = {b"p%08d" % n for n in put_alive} | {k for n in batches for k in batch_keys(n)}
            found = {key for key, _ in engine.scan()}
            assert found == expected, f"round {round_number}: unexpected keys {sorted(found ^ expected)[:5]}"
            report = engine.verify()
            assert report.ok, report.problems
        start = last + 100  # skip numbers so a maybe-landed in-flight write never collides
    assert total_acks > ROUNDS  # the child really wrote between kills
