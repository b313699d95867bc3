"""End to end in a real terminal: ``python -m console.cli demo`` in tmux, read with capture-pane, driven
with send-keys; quitting (ctrl+q) and hanging up (the session killed: SIGHUP) both end it cleanly,
leave no process behind, and release the data dirs.

Skipped where tmux is not installed (CI may not have it: `apt-get install tmux`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from console.tui.demo import create_workspace
from engines import open_engine

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")


class Tmux:
    def __init__(self, workspace: Path, marker: Path) -> None:
        self.session = f"drconsole-e2e-{uuid.uuid4().hex[:8]}"
        self.socket = f"drconsole-e2e-{os.getpid()}"
        self.workspace = workspace
        command = (
            f"cd {ROOT} && DRCONSOLE_STATE_DIR={marker.parent / 'state'} {sys.executable} -m console.cli demo "
            f"--workspace {workspace}; echo $? > {marker}"
        )
        self.run("new-session", "-d", "-s", self.session, "-x", "120", "-y", "40", command)

    def run(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=10,
            env={**os.environ, "TERM": "xterm-256color"},
        )
        return result.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session)

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.session, *keys)

    def wait_for(self, text: str, seconds: float = 20) -> str:
        deadline = time.monotonic() + seconds
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")

    def kill(self) -> None:
        self.run("kill-server")


def console_processes(workspace: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            cmdline = process.info["cmdline"] or []
            if str(workspace) in " ".join(cmdline) and "demo" in cmdline:  # the console, not its nodes
                found.append(process)
        except psutil.Error:
            continue
    return found


def wait_gone(workspace: Path, seconds: float = 10) -> list[psutil.Process]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = [
            process
            for process in console_processes(workspace)
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        ]
        if not left:
            return []
        time.sleep(0.1)
    return left


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "demo"
    create_workspace(path, keys=50)
    return path


def test_drive_the_demo_and_quit(workspace: Path, tmp_path: Path) -> None:
    marker = tmp_path / "exit-code"
    tmux = Tmux(workspace, marker)
    try:
        screen = tmux.wait_for("orders-standby")
        assert "Overview" in screen and "node serve" in screen
        tmux.keys("?")
        tmux.wait_for("drconsole keys")
        tmux.keys("q")  # not Escape: an escape followed at once by "2" reads as alt+2
        time.sleep(0.3)
        tmux.keys("2")
        tmux.wait_for("Triage of")
        tmux.keys("4")
        tmux.wait_for("no incident open")  # triage of a healthy demo node opens none
        tmux.keys("C-q")
        deadline = time.monotonic() + 15
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.read_text().strip() == "0"
    finally:
        tmux.kill()
    assert wait_gone(workspace) == []
    with open_engine(workspace / "nodes" / "orders", mode="rw"):
        pass  # the demo's load released its data dirs


def test_a_hangup_ends_the_console_cleanly(workspace: Path, tmp_path: Path) -> None:
    tmux = Tmux(workspace, tmp_path / "exit-code")
    try:
        tmux.wait_for("orders-standby")
        assert console_processes(workspace)
        tmux.run("kill-session", "-t", tmux.session)  # the terminal goes away: SIGHUP, then SIGCONT
        # The app leaves at once; should its shutdown wedge on the dead terminal, it is ended 5 s later.
        assert wait_gone(workspace, seconds=10) == []
    finally:
        tmux.kill()
