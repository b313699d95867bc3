"""Agent benchmark: corruption RTO of a serving node recovered through its own agent, per engine.

    .venv/bin/python bench/agent_bench.py [--mb 100] [--engines cow,lsm,rocksdb]

For each engine a data dir of ``--mb`` MB is built (4 KiB values), served by ``drconsole node
serve`` with a token and a backup repository (``--archive``: recycled WAL is archived there), backed
up once through the node (``backup create`` finds it by its marker, untimed), and damaged while it
serves (the engine's own corruption fault: a flipped SSTable block for lsm, an SST file for rocksdb,
a B+ tree page for cow). The playbook runs with ``fill_gap=true``: what the repair cannot keep is
brought back from the WAL archive and the backup, so every key must be served afterwards. The figure is the time
from "start run" (``RemoteRunner.run("data-recovery")`` from another process's point of view) to
"node ready" (the node reopened its engine and answered ``/ready``: ``verified_ready_at``).

The peer, measured in the same run on a twin of the same data dir with the same fault, is the
procedure without an agent: stop the node (SIGTERM), run the same playbook on the local data dir,
start the node again, wait for ``/ready``. Both are compared with the reference guides' corruption
RTO of 1m30s-2m (Orbit / Lightning: "data corruption: 90-120 s"). Goal (issue 16): <= 30 s at 100 MB.
After each run every 97th key is read back over HTTP (all must be served).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from drills.node import free_port  # noqa: E402
from engines import create_engine  # noqa: E402
from faults import inject  # noqa: E402
from playbooks.agent import RemoteRunner  # noqa: E402
from playbooks.agent.select import LocalRunner  # noqa: E402
from playbooks.events import RunEvent  # noqa: E402
from playbooks.runner import RunOptions  # noqa: E402
from playbooks.state import StateDir  # noqa: E402

DRCONSOLE = str(Path(sys.executable).with_name("drconsole"))
TOKEN = "bench-token"
FAULT = {"lsm": "sstable-corrupt", "rocksdb": "sst-corrupt", "cow": "page-corrupt"}
VALUE = 4096
REFERENCE = (90.0, 120.0)
GOAL = 30.0


def value_of(index: int) -> bytes:
    stem = b"v%08d-" % index
    return (stem * (VALUE // len(stem) + 1))[:VALUE]


def build(path: Path, backend: str, megabytes: int) -> int:
    count = megabytes * 2**20 // VALUE
    with create_engine(path, backend=backend, durability="async") as engine:
        for start in range(0, count, 2000):
            engine.write_batch([(b"key%08d" % i, value_of(i)) for i in range(start, min(count, start + 2000))])
        engine.flush()
    return count


class Node:
    def __init__(self, data_dir: Path, state: Path, token_file: Path, repo: Path) -> None:
        self.data_dir, self.state, self.token_file, self.repo = data_dir, state, token_file, repo
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {"DRCONSOLE_STATE_DIR": str(self.state), "PATH": "/usr/bin:/bin", "HOME": str(self.state)}
        self.process = subprocess.Popen(
            [
                DRCONSOLE,
                "node",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--port",
                str(self.port),
                "--token-file",
                str(self.token_file),
                "--archive",
                str(self.repo),
                "--scrub-interval",
                "0",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_ready(self.url, 120)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=120)


def wait_ready(url: str, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return time.time()
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready within {timeout} s")


def check(url: str, count: int) -> int:
    wrong = 0
    with httpx.Client(base_url=url, timeout=10) as http:
        for index in range(0, count, 97):
            response = http.get(f"/kv/key{index:08d}")
            wrong += response.status_code != 200 or response.content != value_of(index)
    return wrong


def backup(node: Node) -> None:
    done = subprocess.run(
        [DRCONSOLE, "backup", "create", "--data-dir", str(node.data_dir), "--repo", str(node.repo), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0 or "through_node" not in done.stdout:
        raise RuntimeError(f"backup through the node failed: {done.stderr}")


PARAMS = {"fill_gap": "true"}


def overhead(events: list[RunEvent]) -> float:
    """Seconds the node spent draining, reopening and answering /ready (from the run's own events)."""

    def at(prefix: str) -> float:
        return next(event.time for event in events if event.kind == "log" and event.message.startswith(prefix))

    drain = at("engine closed") - at("draining")
    back = next(event.time for event in events if event.kind == "run_finished") - at("reopening")
    return drain + back


def agent_path(work: Path, data: Path, backend: str, count: int, token_file: Path) -> tuple[float, int]:
    node = Node(data, work / "agent-node-state", token_file, work / "agent-repo")
    node.start()
    try:
        backup(node)
        inject(FAULT[backend], data, seed=1)
        events: list[RunEvent] = []
        runner = RemoteRunner(
            node.url,
            token=TOKEN,
            node="bench",
            state=StateDir(work / "responder"),
            timeout=60.0,
            listeners=[events.append],
        )
        started = time.time()
        result = runner.run("data-recovery", None, RunOptions(params=dict(PARAMS), assume_yes=True))
        if result.status != "succeeded" or result.verified_ready_at is None:
            raise RuntimeError(f"agent run {result.status}: {result.message}")
        print(
            f"{backend}: the agent's own part (drain + reopen + /ready) {overhead(events):.2f} s; steps: "
            + ", ".join(
                f"{step.id.split('/')[-1]} {step.duration_seconds:.1f}"
                for step in result.steps
                if step.duration_seconds >= 0.5
            ),
            flush=True,
        )
        return result.verified_ready_at - started, check(node.url, count)
    finally:
        node.stop()


def manual_path(work: Path, data: Path, backend: str, count: int, token_file: Path) -> tuple[float, int]:
    node = Node(data, work / "manual-node-state", token_file, work / "manual-repo")
    node.start()
    backup(node)
    inject(FAULT[backend], data, seed=1)
    started = time.time()
    node.stop()  # the responder stops the node to get the data dir
    runner = LocalRunner(data, state=StateDir(work / "manual-state"))
    result = runner.run(
        "data-recovery",
        None,
        RunOptions(params={**PARAMS, "repo": str(node.repo)}, assume_yes=True, open_incident=False),
    )
    if result.status != "succeeded":
        raise RuntimeError(f"local run {result.status}: {result.message}")
    node.start()  # ... and starts it again
    try:
        return time.time() - started, check(node.url, count)
    finally:
        node.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--engines", default="cow,lsm,rocksdb")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="agent-bench-") as folder:
        root = Path(folder)
        token_file = root / "token"
        token_file.write_text(TOKEN + "\n")
        for backend in args.engines.split(","):
            work = root / backend
            work.mkdir()
            clock = time.monotonic()
            count = build(work / "data", backend, args.mb)
            shutil.copytree(work / "data", work / "twin")
            print(f"{backend}: built {args.mb} MB ({count} keys) in {time.monotonic() - clock:.1f} s", flush=True)
            agent_seconds, agent_wrong = agent_path(work, work / "data", backend, count, token_file)
            print(f"{backend}: agent {agent_seconds:.1f} s ({agent_wrong} wrong keys)", flush=True)
            manual_seconds, manual_wrong = manual_path(work, work / "twin", backend, count, token_file)
            print(f"{backend}: stop + local run + start {manual_seconds:.1f} s ({manual_wrong} wrong keys)", flush=True)
            rows.append((backend, agent_seconds, manual_seconds, agent_wrong + manual_wrong))
            shutil.rmtree(work)
    print()
    print(
        f"corruption RTO at {args.mb} MB: start run -> node ready (goal <= {GOAL:.0f} s; reference guides "
        f"{REFERENCE[0]:.0f}-{REFERENCE[1]:.0f} s)"
    )
    print(
        f"{'engine':<8} {'agent':>8} {'stop+local+start':>17} {'peer/agent':>11} {'reference/agent':>16} {'goal':>5}"
        f" {'wrong keys':>10}"
    )
    for backend, agent_seconds, manual_seconds, wrong in rows:
        goal = "ok" if agent_seconds <= GOAL else "MISS"
        print(
            f"{backend:<8} {agent_seconds:>7.1f}s {manual_seconds:>16.1f}s {manual_seconds / agent_seconds:>10.2f}x "
            f"{REFERENCE[0] / agent_seconds:>6.1f}-{REFERENCE[1] / agent_seconds:.1f}x {goal:>5} {wrong:>10}"
        )
    return 0 if all(agent <= GOAL and not wrong for _, agent, _, wrong in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
