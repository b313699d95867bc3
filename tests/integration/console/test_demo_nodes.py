"""The demo runs real ``drconsole node serve`` processes, started after the first frame, stopped on exit.

The console paints with every card saying "starting", the node processes start once the first
frame is shown, the cards fill in as each node answers over HTTP (the standby following its
primary), the light load writes through the API, and closing the session leaves no process. A
console killed with SIGKILL leaves none either (the kernel's parent-death signal).
"""

from __future__ import annotations

import asyncio
import os
import pty
import select
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest
from console_testkit import screen_text
from test_real_playbooks import wait_for

from console.tui.demo import available_backends, create_workspace, demo_session

pytestmark = pytest.mark.skipif(not available_backends(), reason="no backend built yet")
ROOT = Path(__file__).resolve().parents[3]


def gone(pids: list[int], seconds: float = 10.0) -> list[int]:
    deadline = time.monotonic() + seconds
    left = pids
    while time.monotonic() < deadline:
        left = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    left.append(pid)
            except psutil.NoSuchProcess:
                continue
        if not left:
            return []
        time.sleep(0.1)
    return left


@pytest.mark.slow  # four node processes starting: 5-12 s on two busy cores; the kill test below is the fast check
def test_the_demo_shows_node_processes_starting_then_serving_and_stops_them(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    create_workspace(workspace, keys=50)
    session = demo_session(workspace, watch_terminal=False)
    app, fleet = session.app, session.fleet
    pids: list[int] = []

    async def main() -> tuple[str, str]:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None, 10)
            await pilot.pause(0.1)
            first = screen_text(app)
            await wait_for(pilot, lambda: len(fleet.processes) == len(fleet.specs), 10)
            pids.extend(process.pid for process in fleet.processes.values())

            def all_up() -> bool:
                snapshot = app.snapshot
                return snapshot is not None and all(
                    node.reachable and node.source == "http" and not node.health_reason.startswith("starting")
                    for node in snapshot.nodes
                )

            await wait_for(pilot, all_up, 60)
            await wait_for(pilot, lambda: session.load is not None and session.load.writes >= 2, 20)
            await pilot.pause(1.2)
            return first, screen_text(app)

    try:
        first, serving = asyncio.run(main())
    finally:
        session.close()
    assert first.count("starting") >= len(fleet.specs)
    assert "`drconsole node serve` processes on 127.0.0.1" in " ".join(first.split())
    for spec in fleet.specs:
        assert spec.name in serving
    assert "starting" not in serving
    snapshot = app.snapshot
    assert snapshot is not None
    standby = snapshot.node(fleet.specs[-1].name)
    assert standby is not None and standby.role == "standby"
    assert len(pids) == len(fleet.specs) and gone(pids) == []


def test_a_killed_demo_console_leaves_no_node_behind(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    create_workspace(workspace, keys=50)
    pid, master = pty.fork()
    if pid == 0:  # the child: the demo on the pty
        os.chdir(ROOT)
        os.environ["TERM"] = "xterm-256color"
        os.execv(sys.executable, [sys.executable, "-m", "console.cli", "demo", "--workspace", str(workspace)])
    children: list[int] = []
    expected = len(available_backends()) + 1  # one node per engine and a standby
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(children) < expected:
            if select.select([master], [], [], 0.1)[0]:
                os.read(master, 65536)
            children = [child.pid for child in psutil.Process(pid).children() if "node" in " ".join(child.cmdline())]
        assert len(children) == expected
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert gone(children) == []
    finally:
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(master)
