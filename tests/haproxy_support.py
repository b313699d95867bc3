"""A real HAProxy (Debian's ``haproxy``) for tests, run from the shipped deploy/haproxy/haproxy.cfg.

Importable as ``haproxy_support`` (``tests`` is on pytest's path). ``start_haproxy`` renders the
shipped config with the test's node addresses and free loopback ports (nothing else changes), runs
``haproxy -db`` (foreground, no daemon, no service) and waits until its frontends accept; ``stop()``
terminates it. ``ensure_installed`` installs the package as ``make system-deps`` does.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import promstack
import pytest

__all__ = [
    "SHIPPED_CONFIG",
    "FailoverResult",
    "HaproxyProcess",
    "ensure_installed",
    "failover_through_haproxy",
    "render_config",
    "start_haproxy",
]

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
_SERVER = re.compile(r"^(\s*server\s+)(\S+)\s+(\S+)(.*)$", re.MULTILINE)
_BIND = re.compile(r"^(\s*bind\s+)127\.0\.0\.1:(\d+)\s*$", re.MULTILINE)


def ensure_installed() -> None:
    """``haproxy`` on PATH, installing it as root with deploy/install-system-deps.sh (as ``make system-deps``)."""
    if shutil.which("haproxy") is not None:
        return
    if os.geteuid() != 0:
        pytest.fail(
            "haproxy is not installed and this is not root: run `make system-deps` as root "
            "(apt-get install --no-install-recommends haproxy)",
            pytrace=False,
        )
    with promstack.INSTALL_LOCK.open("w") as lock:  # one installer at a time, with promstack's users too
        fcntl.flock(lock, fcntl.LOCK_EX)
        if shutil.which("haproxy") is None:
            promstack._install()
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy still missing after deploy/install-system-deps.sh", pytrace=False)


def render_config(servers: list[tuple[str, str]], ports: dict[int, int]) -> str:
    """The shipped config with each backend's server lines replaced by ``servers`` ((name, host:port),
    keeping the shipped line's options) and each ``bind 127.0.0.1:P`` moved to ``ports[P]``."""
    out: list[str] = []
    replaced = False
    for text in SHIPPED_CONFIG.read_text(encoding="utf-8").splitlines():
        if not text.startswith((" ", "\t")):
            replaced = False  # a new section
        match = _SERVER.match(text)
        if match is not None:
            if not replaced:
                out += [f"{match.group(1)}{name} {address}{match.group(4)}" for name, address in servers]
                replaced = True
            continue
        out.append(text)
    return _BIND.sub(lambda bind: f"{bind.group(1)}127.0.0.1:{ports[int(bind.group(2))]}", "\n".join(out) + "\n")


class HaproxyProcess:
    def __init__(self, workdir: Path, config: str, ports: list[int]) -> None:
        self.workdir = workdir
        self.config_path = workdir / "haproxy.cfg"
        self.config_path.write_text(config, encoding="utf-8")
        self.log_path = workdir / "haproxy.log"
        self.ports = ports
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> HaproxyProcess:
        check = subprocess.run(
            ["haproxy", "-c", "-f", str(self.config_path)], capture_output=True, text=True, timeout=30
        )
        assert check.returncode == 0, check.stdout + check.stderr
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                ["haproxy", "-db", "-f", str(self.config_path)],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        for port in self.ports:
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f"haproxy exited {self.process.returncode}: {self.log_path.read_text()}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise AssertionError(f"haproxy did not listen on {port} in {timeout} s") from None
                    time.sleep(0.05)
        return self

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def __enter__(self) -> HaproxyProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def start_haproxy(workdir: Path, servers: list[tuple[str, str]]) -> tuple[HaproxyProcess, dict[int, int]]:
    """HAProxy on the shipped config for ``servers``; returns it and {shipped port: the port used}."""
    ensure_installed()
    workdir.mkdir(parents=True, exist_ok=True)
    shipped = [int(port) for _prefix, port in _BIND.findall(SHIPPED_CONFIG.read_text(encoding="utf-8"))]
    ports = {port: promstack.free_port() for port in shipped}
    process = HaproxyProcess(workdir, render_config(servers, ports), list(ports.values()))
    return process.start(), ports


# --- a failover measured through HAProxy -------------------------------------------------------


@dataclass
class FailoverResult:
    """What the clients saw while the primary was killed and the standby promoted behind HAProxy.

    Times are seconds. ``outage``: the longest gap between two consecutive acknowledged writes
    across the failover (what a client sees). ``promoted``: from the kill to the standby answering
    /primary 200 itself (the failover's own time). ``missing``: acknowledged keys the new primary
    lacks or holds with another value (must be none).
    """

    acked: int
    acked_after: int
    outage: float
    promoted: float
    playbook_seconds: float
    missing: list[str]
    playbook: dict[str, Any]


def failover_through_haproxy(
    workdir: Path, *, engine: str = "lsm", before: float = 1.5, after: float = 2.0, timeout: float = 60.0
) -> FailoverResult:
    """A primary and its standby behind the shipped HAProxy config; a writer through HAProxy; ``kill -9``
    of the primary after ``before`` s; the failover playbook (promote + salvage); the writer goes on for
    ``after`` s once it is back. Everything started here is stopped here."""
    from integration.health.health_support import ServedNode, free_port

    from drills import Ledger
    from drills.node import NodeLoad

    workdir.mkdir(parents=True, exist_ok=True)
    primary = ServedNode(workdir / "a", "--scrub-interval", "0", engine=engine, name="a", port=free_port())
    standby = ServedNode(
        workdir / "b", "--scrub-interval", "0", "--follow", primary.url, engine=engine, name="b", port=free_port()
    )
    started: list[Any] = []
    try:
        started += [primary.start(), standby.start()]
        proxy, ports = start_haproxy(
            workdir / "haproxy",
            [("a", primary.url.removeprefix("http://")), ("b", standby.url.removeprefix("http://"))],
        )
        started.append(proxy)
        front = f"http://127.0.0.1:{ports[5000]}"
        promstack.wait_for(
            lambda: httpx.put(f"{front}/kv/warmup", content=b"1", timeout=2).status_code == 200,
            20,
            "HAProxy routing writes to the primary",
        )
        ledger_path = workdir / "ledger.jsonl"
        ledger = Ledger(ledger_path)
        load = NodeLoad(front, ledger, prefix="w").start()
        time.sleep(before)
        promoted_at: list[float] = []

        def watch_standby() -> None:
            while not promoted_at and time.monotonic() < killed_at + timeout:
                try:
                    if httpx.get(f"{standby.url}/primary", timeout=1).status_code == 200:
                        promoted_at.append(time.monotonic())
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.02)

        killed_at = time.monotonic()
        primary.kill()
        watcher = threading.Thread(target=watch_standby, daemon=True)
        watcher.start()
        acked_at_kill = load.acked
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "console",
                "playbook",
                "run",
                "failover",
                "--data-dir",
                str(primary.data_dir),
                "--param",
                f"nodes={primary.url},{standby.url}",
                "--yes",
                "--json",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        playbook_seconds = time.monotonic() - killed_at
        assert run.returncode == 0, run.stdout + run.stderr
        watcher.join(timeout)
        load.wait_for(acked_at_kill + 1, timeout)
        time.sleep(after)
        load.stop()
        ledger.close()
        entries = [json.loads(text) for text in ledger_path.read_text().splitlines() if text.strip()]
        times = sorted(entry["ack"] for entry in entries)
        outage = max((later - earlier for earlier, later in zip(times, times[1:])), default=0.0)
        missing = []
        with httpx.Client(base_url=standby.url, timeout=5) as client:
            for entry in entries:
                value = client.get(f"/kv/{entry['key']}")
                if value.status_code != 200 or hashlib.sha256(value.content).hexdigest() != entry["sha256"]:
                    missing.append(entry["key"])
        return FailoverResult(
            acked=len(entries),
            acked_after=len(entries) - acked_at_kill,
            outage=outage,
            promoted=(promoted_at[0] - killed_at) if promoted_at else float("nan"),
            playbook_seconds=playbook_seconds,
            missing=missing,
            playbook=json.loads(run.stdout),
        )
    finally:
        for thing in reversed(started):
            thing.stop()
        primary.stop()
        standby.stop()
