"""The zygote forks consoles that take the session's environment: a viewer role given only in the
environment turns ``drconsole tui`` into the read-only dashboard (console.tui.launch honours it)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import psutil
import pyte
import pytest
from serve_kit import ROOT, make_fleet

from console.cli.servers.pty_console import PtyConsole
from console.cli.servers.roles import console_environment
from console.cli.servers.spawners import ZygoteSpawner


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("DRCONSOLE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    return console_environment("viewer", user="zoe", client="127.0.0.9 5555 22", term="xterm-256color")


def test_a_forked_console_takes_the_session_role_and_ends_on_hang_up(tmp_path: Path, env: dict[str, str]) -> None:
    config = make_fleet(tmp_path)
    screen = pyte.Screen(100, 30)
    stream = pyte.ByteStream(screen)

    async def main() -> tuple[str, int, int, int]:
        zygote = ZygoteSpawner()
        assert await zygote.start()
        try:
            console = PtyConsole(
                ["tui", "--config", str(config)],
                env,
                cols=100,
                rows=30,
                cwd=tmp_path,
                spawner=zygote,
                on_output=stream.feed,
            )
            await console.start()
            assert zygote.process is not None and psutil.Process(console.pid).ppid() == zygote.process.pid
            for _ in range(300):
                if "orders" in "\n".join(screen.display) and "Dashboard" in screen.display[0]:
                    break
                await asyncio.sleep(0.05)
            pid = console.pid
            code = await console.hang_up(2.0)
            return "\n".join(screen.display), code, pid, zygote.process.pid
        finally:
            zygote.close()

    text, code, pid, zygote_pid = asyncio.run(main())
    assert "Dashboard" in text.splitlines()[0] and "READ-ONLY" in text, text  # asked for tui, got the viewer's board
    assert code == 0  # SIGHUP: the console left cleanly, it was not killed
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not psutil.pid_exists(zygote_pid) or psutil.Process(zygote_pid).status() == psutil.STATUS_ZOMBIE
    assert os.environ.get("DRCONSOLE_ROLE") is None
