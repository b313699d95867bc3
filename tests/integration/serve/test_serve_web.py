"""``drconsole serve web``: the page, its websocket, the read-only dashboard, and keys that do nothing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import psutil
import pyte
import pytest
from serve_kit import ServerProcess, audit_entries, make_fleet, wait_until


@pytest.fixture
def wall(tmp_path: Path) -> Iterator[ServerProcess]:
    config = make_fleet(tmp_path)
    server = ServerProcess(
        ["web", "--port", "0", "--config", str(config)], tmp_path, pattern=r"listening on 127\.0\.0\.1:(\d+)"
    )
    yield server
    server.stop()


async def _session(port: int, keys: list[str]) -> tuple[str, str, list[str]]:
    """Open the page and its websocket; the screen before and after ``keys``, as a browser would show it."""
    screen = pyte.Screen(100, 30)
    stream = pyte.ByteStream(screen)

    def text() -> str:
        return "\n".join(screen.display)

    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/") as response:
            assert response.status == 200 and response.content_type == "text/html"
            page = await response.text()
        assert f"ws://127.0.0.1:{port}/ws" in page  # where textual.js connects

        async def read_until(ws: aiohttp.ClientWebSocketResponse, predicate: object, timeout: float) -> None:
            deadline = time.monotonic() + timeout
            while not predicate():  # type: ignore[operator]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                try:
                    message = await ws.receive(timeout=remaining)
                except TimeoutError:
                    return
                if message.type == aiohttp.WSMsgType.BINARY:
                    stream.feed(message.data)
                elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    return

        async with http.ws_connect(f"http://127.0.0.1:{port}/ws?width=100&height=30") as ws:
            await ws.send_str(json.dumps(["resize", {"width": 100, "height": 30}]))
            await read_until(ws, lambda: "orders" in text(), 20)
            before = text()
            for key in keys:
                await ws.send_str(json.dumps(["stdin", key]))
                await read_until(ws, lambda: False, 0.05)
            await read_until(ws, lambda: False, 1.0)
            after = text()
            processes = [" ".join(child.cmdline()) for child in psutil.Process().children(recursive=True)]
    return before, after, processes


def test_the_wall_view_serves_the_dashboard_and_ignores_keys(wall: ServerProcess) -> None:
    keys = ["2", "a", "y", "3", "s", "r", "4", "e", "i", "\t", "\r", "\x10", "start run\r", "\x1b", "1"]
    before, after, _ = asyncio.run(_session(wall.port, keys))
    assert "Dashboard" in before and "READ-ONLY" in before and "orders" in before, before
    assert "Dashboard" in after and "Triage of" not in after, after
    state = wall.root / "state"
    assert sorted(path.name for path in state.iterdir()) == ["audit.head", "audit.jsonl"]  # no run, no incident
    assert list((wall.root / "reports").iterdir()) == []
    # The browser went away: its dashboard process ends, and the session's two lines are in the audit log.
    server = psutil.Process(wall.pid)
    assert wait_until(
        lambda: not [p for p in server.children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE], 8
    ), server.children(recursive=True)
    assert wait_until(lambda: [e["action"] for e in audit_entries(wall.root)] == ["session_start", "session_end"], 5)
    start = audit_entries(wall.root)[0]
    assert start["role"] == "viewer" and start["who"]["user"] == "web" and start["client_address"] == "127.0.0.1"


@pytest.mark.slow
def test_the_dashboard_process_gets_the_viewer_environment_only(tmp_path: Path) -> None:
    """A secret in the server's environment does not reach the dashboard a browser drives."""
    config = make_fleet(tmp_path)
    server = ServerProcess(
        ["web", "--port", "0", "--config", str(config)],
        tmp_path,
        pattern=r"listening on 127\.0\.0\.1:(\d+)",
        env={"DRCONSOLE_TEST_SECRET": "hunter2"},
    )
    try:

        async def peek() -> dict[str, str]:
            async with aiohttp.ClientSession() as http:
                async with http.ws_connect(f"http://127.0.0.1:{server.port}/ws?width=80&height=24") as ws:
                    await ws.receive(timeout=20)
                    children = [
                        p
                        for p in psutil.Process(server.pid).children(recursive=True)
                        if "dashboard" in " ".join(p.cmdline())
                    ]
                    assert len(children) == 1
                    return dict(children[0].environ())

        environment = asyncio.run(peek())
        assert psutil.Process(server.pid).environ()["DRCONSOLE_TEST_SECRET"] == "hunter2"
        assert "DRCONSOLE_TEST_SECRET" not in environment
        assert environment["DRCONSOLE_ROLE"] == "viewer"
        assert environment["TEXTUAL_DRIVER"].endswith("web_driver:WebDriver")
    finally:
        server.stop()
