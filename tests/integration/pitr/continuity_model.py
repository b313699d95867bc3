"""The steps of the continuity property test and the model they are checked against.

Each step is ordinary use of one data dir by a real process: the CLI (in this process, as
``console.cli.main.main``), an application embedding the engine (in this process, or in a child killed
with SIGKILL after its writes were acknowledged), or ``drconsole node serve`` in a child process
(stopped with SIGTERM or killed with SIGKILL). The model is what the test itself wrote: after
every step it records the state, the data dir's last LSN and a quiet moment (no write in flight),
so a point-in-time recovery to that LSN or that moment must give exactly that state.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from integration.node.node_support import ROOT, RUNNER, free_port

from engines import open_engine

KEYS = 60  # a small key space: overwrites and deletes of earlier keys are common
Write = tuple[str, str | None]  # (key, value); None deletes


@dataclass
class Point:
    """The state after one step: what PITR to ``lsn`` or to ``moment_ns`` must give."""

    step: int
    lsn: int
    moment_ns: int
    state: dict[bytes, bytes]


@dataclass
class Model:
    state: dict[bytes, bytes] = field(default_factory=dict)
    points: list[Point] = field(default_factory=list)
    base_lsn: int | None = None  # the first full backup's LSN: the window starts there

    def apply(self, writes: list[Write]) -> None:
        for key, value in writes:
            if value is None:
                self.state.pop(key.encode(), None)
            else:
                self.state[key.encode()] = value.encode()

    def checkpoint(self, data: Path, step: int) -> Point:
        with open_engine(data, mode="ro") as engine:
            lsn = engine.last_lsn
        time.sleep(0.002)
        point = Point(step, lsn, time.time_ns(), dict(self.state))
        time.sleep(0.002)
        self.points.append(point)
        return point


def writes_for(rng: random.Random, count: int, tag: str) -> list[Write]:
    """``count`` puts and deletes over the small key space (values name the step that wrote them)."""
    writes: list[Write] = []
    for n in range(count):
        key = f"k{rng.randrange(KEYS):03d}"
        writes.append((key, None) if rng.random() < 0.2 else (key, f"{tag}-{n}-" + "x" * rng.randrange(10, 300)))
    return writes


def embedded(data: Path, writes: list[Write], *, flush: bool) -> None:
    """An application opening the data dir in this process: writes, maybe a flush, a clean close."""
    with open_engine(data, durability="async") as engine:
        for index, (key, value) in enumerate(writes):
            if value is None:
                engine.delete(key.encode())
            elif index % 7 == 3:
                engine.write_batch([(key.encode(), value.encode())])
            else:
                engine.put(key.encode(), value.encode())
            if flush and index == len(writes) // 2:
                engine.flush()  # the store covers the WAL: recycling (and so archiving) runs


_CHILD = textwrap.dedent("""
    import json, sys, time
    from engines import open_engine
    writes = json.loads(sys.stdin.read())
    engine = open_engine(sys.argv[1], durability="sync")
    for key, value in writes:
        if value is None:
            engine.delete(key.encode())
        else:
            engine.put(key.encode(), value.encode())
    print("acked", engine.last_lsn, flush=True)
    time.sleep(600)  # killed here, with the engine open: no close, no flush, no archiving
""")


def embedded_killed(data: Path, writes: list[Write]) -> None:
    """An application that acknowledged its writes (sync durability) and was killed with SIGKILL."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(data)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps(writes))
        child.stdin.close()
        line = child.stdout.readline()
        assert line.startswith("acked"), f"the child failed: {line!r} {child.stderr.read() if child.stderr else ''}"
    finally:
        child.kill()
        child.wait(timeout=30)


def node_run(data: Path, writes: list[Write], *, kill: bool, linger: float, timeout: float = 1.0) -> None:
    """``drconsole node serve`` on the data dir: writes over HTTP, then SIGKILL (or SIGTERM)."""
    port = free_port()
    child = subprocess.Popen(
        [
            sys.executable,
            str(RUNNER),
            "node",
            "serve",
            "--data-dir",
            str(data),
            "--port",
            str(port),
            "--archive-timeout",
            str(timeout),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=10.0) as client:
            deadline = time.monotonic() + 60
            while True:
                if child.poll() is not None:
                    raise AssertionError(
                        f"node exited {child.returncode}: {child.stderr.read() if child.stderr else ''}"
                    )
                try:
                    client.get("/health", timeout=0.5)
                    break
                except httpx.HTTPError:
                    assert time.monotonic() < deadline, "the node did not come up"
                    time.sleep(0.05)
            for key, value in writes:
                response = (
                    client.put(f"/kv/{key}", content=value.encode())
                    if value is not None
                    else client.delete(f"/kv/{key}")
                )
                assert response.status_code in (200, 201, 204, 404), response.text  # a delete of an absent key: 404
            time.sleep(linger)
    finally:
        child.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=30)


def describe(steps: list[tuple[Any, ...]]) -> str:
    return " -> ".join(step[0] for step in steps)
