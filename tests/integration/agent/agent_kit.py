"""Real nodes with their agent, real CLI processes: the helpers of the agent tests.

A node is ``drconsole node serve`` in its own process with its own state dir (the "node's host");
the CLI runs in another process with another state dir and a config that holds only the node's
``url`` and ``token_file`` (the responder's laptop). ``prefix`` puts a process in a network
namespace (``ip netns exec NS``) for the tests across a real network.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from support import CliResult

from drills.node import free_port, serve_command

ROOT = Path(__file__).resolve().parents[3]
DRCONSOLE = str(Path(sys.executable).with_name("drconsole"))
TOKEN = "agent-test-token-7f3a"


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value: {last!r})")


def base_env(state: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in (
            "DRCONSOLE_STATE_DIR",
            "DRCONSOLE_PLAYBOOK_PATH",
            "DRCONSOLE_TEST_ACTIONS",
            "DRCONSOLE_WEBHOOK_URL",
            "DRCONSOLE_CONFIG",
        )
    }
    env.update({"DRCONSOLE_STATE_DIR": str(state), "PYTHONPATH": str(ROOT), **extra})
    return env


class AgentNode:
    """``drconsole node serve`` with its agent, in a process of its own (optionally in a netns)."""

    def __init__(
        self,
        data_dir: Path,
        state: Path,
        *,
        engine: str = "lsm",
        token_file: Path | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        prefix: Sequence[str] = (),
        env: dict[str, str] | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        self.data_dir = data_dir
        self.state = state
        self.host = host
        self.port = port or free_port()
        self.url = f"http://{host}:{self.port}"
        self.prefix = list(prefix)
        self.token_file = token_file
        self.env = base_env(state, **(env or {}))
        args = serve_command(
            engine, data_dir, self.port, "--host", host, "--scrub-interval", "0", *extra, launcher=[DRCONSOLE]
        )
        if token_file is not None:
            args += ["--token-file", str(token_file)]
        if host != "127.0.0.1":
            args.append("--allow-remote")
        self.args = args
        self.process: subprocess.Popen[str] | None = None
        self.log = state.parent / f"{data_dir.name}-node.log"

    def start(self, timeout: float = 30.0, probe: Callable[[], bool] | None = None) -> AgentNode:
        """Start it and wait until ``probe`` (default: GET /health from this process) says it is up."""
        self.state.mkdir(parents=True, exist_ok=True)
        handle = open(self.log, "a")
        self.process = subprocess.Popen(
            [*self.prefix, *self.args], cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"node exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            if probe() if probe is not None else self.call("GET", "/health") is not None:
                return self
            time.sleep(0.1)
        raise AssertionError(f"node on {self.url} did not come up: {self.log.read_text()[-2000:]}")

    def call(self, method: str, path: str, *, token: bool = False, **kwargs: Any) -> httpx.Response | None:
        """A request from this test process (only where the node's address is reachable from here)."""
        headers = {"Authorization": f"Bearer {TOKEN}"} if token else {}
        try:
            return httpx.request(method, self.url + path, headers=headers, timeout=10.0, **kwargs)
        except httpx.HTTPError:
            return None

    def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def write_token(path: Path, token: str = TOKEN) -> Path:
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path


def write_config(path: Path, name: str, url: str, token_file: Path | None) -> Path:
    """A console config that knows the node only by its URL (and token file): no data_dir."""
    lines = ["[[node]]", f'name = "{name}"', 'engine = "lsm"', f'url = "{url}"']
    if token_file is not None:
        lines.append(f'token_file = "{token_file}"')
    path.write_text("\n".join(lines) + "\n")
    return path


def cli(
    state: Path, *args: str | Path, prefix: Sequence[str] = (), timeout: float = 180, env: dict[str, str] | None = None
) -> CliResult:
    """``drconsole ARGS`` as the responder runs it, in a process of its own."""
    done = subprocess.run(
        [*prefix, DRCONSOLE, *map(str, args)],
        cwd=ROOT,
        env=base_env(state, **(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert "Traceback (most recent call last)" not in done.stderr + done.stdout, done.stderr
    return CliResult(done.returncode, done.stdout, done.stderr)


def spawn_cli(state: Path, *args: str | Path, prefix: Sequence[str] = ()) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*prefix, DRCONSOLE, *map(str, args)],
        cwd=ROOT,
        env=base_env(state),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def value_of(index: int) -> bytes:
    return (b"value-%06d-" % index) * 20


def fill(node: AgentNode, count: int, *, client: Callable[..., Any] | None = None) -> dict[bytes, bytes]:
    """``count`` keys written through the node's API and flushed into an SSTable; the ledger."""
    ledger: dict[bytes, bytes] = {}
    with httpx.Client(base_url=node.url, timeout=10.0) as http:
        for index in range(count):
            key = b"key%06d" % index
            response = http.put(f"/kv/{key.decode()}", content=value_of(index))
            assert response.status_code == 200, response.text
            ledger[key] = value_of(index)
        flushed = http.post("/admin/flush", headers={"Authorization": f"Bearer {TOKEN}"}, json={})
        assert flushed.status_code == 200, flushed.text
    return ledger


def missing_keys(url: str, ledger: dict[bytes, bytes]) -> list[bytes]:
    """Keys of the ledger the node does not serve with their value (over HTTP, from this process)."""
    wrong = []
    with httpx.Client(base_url=url, timeout=10.0) as http:
        for key, value in ledger.items():
            response = http.get(f"/kv/{key.decode()}")
            if response.status_code != 200 or response.content != value:
                wrong.append(key)
    return wrong


def journal_records(state: Path, run_id: str) -> list[dict[str, Any]]:
    path = state / "runs" / f"{run_id}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def audit_entries(state: Path) -> list[dict[str, Any]]:
    path = state / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
