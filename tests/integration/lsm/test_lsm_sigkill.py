"""kill -9 of a real writer in the middle of a flush and in the middle of a compaction.

After every kill, before anything reopens the directory: the manifest on disk parses and names
only files that exist. Then the engine opens and holds every acknowledged write, and verify is
clean. Each round continues on the same directory, so recovery after recovery is exercised.
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
from engines.lsm.manifest import load_manifest

WRITER = Path(__file__).with_name("lsm_crash_writer.py")
ROUNDS = 40 if SLOW else 6


def value_of(n: int) -> bytes:
    return b"v%08d-" % n * (1 + n % 40)


def effects(n: int) -> dict[bytes, bytes | None]:
    """What write ``n`` of the child does (mirrors lsm_crash_writer.main)."""
    if n % 11 == 0:
        return {b"b%08d.%d" % (n, i): value_of(n) for i in range(3)}
    if n % 13 == 0:
        return {b"p%08d" % (n - 6): None}
    return {b"p%08d" % n: value_of(n)}


def kill_at(data_dir: Path, start: int, mark: str, rng: random.Random) -> list[int]:
    """Run the writer until it reaches ``mark`` (after a warm-up), kill it there; return the acks."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.Popen(
        [sys.executable, str(WRITER), str(data_dir), str(start)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert child.stdout is not None and child.stderr is not None
    lines: list[str] = []
    seen = threading.Event()
    skip = rng.randrange(0, 4)  # how many marks of this kind to let pass first

    def read() -> None:
        nonlocal skip
        buffer = b""
        for chunk in iter(lambda: os.read(child.stdout.fileno(), 65536), b""):  # type: ignore[union-attr]
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for raw in complete:
                line = raw.decode()
                lines.append(line)
                if line == f"mark {mark}" and "ready" in lines and not seen.is_set():
                    if skip == 0:
                        seen.set()
                    skip -= 1

    reader = threading.Thread(target=read)
    reader.start()
    found = seen.wait(timeout=60)
    time.sleep(rng.uniform(0, 0.004))
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    reader.join()
    assert found, f"the writer never reached '{mark}': {child.stderr.read().decode(errors='replace')[-2000:]}"
    assert "ready" in lines
    return [int(line.split()[1]) for line in lines if line.startswith("ack ")]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("mark", ["table", "manifest", "compaction"])
def test_kill_during_flush_or_compaction_loses_no_acknowledged_write(tmp_path: Path, mark: str) -> None:
    rng = random.Random(f"lsm-{mark}")
    data_dir = tmp_path / "data"
    model: dict[bytes, bytes | None] = {}
    start = 0
    for round_number in range(ROUNDS):
        acks = kill_at(data_dir, start, mark, rng)
        for n in acks:
            model.update(effects(n))
        last = max([start] + acks)
        manifest = load_manifest(data_dir)  # parses, checksum holds
        for meta in manifest.tables():
            assert (data_dir / meta.relative_path).exists(), f"round {round_number}: manifest names missing {meta.name}"
        in_flight = effects(last + 1)
        with open_engine(data_dir) as engine:
            for key, value in model.items():
                if key in in_flight:
                    continue
                assert engine.get(key) == value, f"round {round_number}: acknowledged write to {key!r} lost"
            landed = [engine.get(key) == value for key, value in in_flight.items()]
            assert all(landed) or not any(landed), f"round {round_number}: write {last + 1} is half there"
            if all(landed):
                model.update(in_flight)
            expected = sorted((k, v) for k, v in model.items() if v is not None)
            assert list(engine.scan()) == expected, f"round {round_number}: scan differs"
            report = engine.verify()
            assert report.ok, report.problems
        start = last + 100
    assert len(model) > ROUNDS
