"""How a session's console process is started: forked from the zygote (fast), or a fresh interpreter.

Both give a ``Child`` with ``pid`` and ``poll()`` (the exit code once it has ended, else None);
console.cli.servers.pty_console drives either the same way. ``ZygoteSpawner`` falls back to
``DirectSpawner`` if its zygote cannot start or dies: a session is slower then, never refused.
"""

from __future__ import annotations

import array
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from console.cli.servers.roles import base_environment

__all__ = ["Child", "DirectSpawner", "Spawner", "ZygoteSpawner"]

SESSION_MAIN = [sys.executable, "-m", "console.cli.servers.session_main"]


class Child(Protocol):
    pid: int

    def poll(self) -> int | None: ...


class Spawner(Protocol):
    async def spawn(self, args: Sequence[str], env: dict[str, str], cwd: Path | None, slave: int) -> Child: ...


class DirectSpawner:
    """``python -m console.cli.servers.session_main ARGS`` on the slave, in a new session."""

    def __init__(self, argv: Sequence[str] = SESSION_MAIN) -> None:
        self.argv = list(argv)

    async def spawn(self, args: Sequence[str], env: dict[str, str], cwd: Path | None, slave: int) -> Child:
        return subprocess.Popen(
            [*self.argv, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )


class _ZygoteChild:
    """A console forked by the zygote: its exit code comes from the zygote, which reaps it."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.code: int | None = None
        self._gone_since: float | None = None

    def poll(self) -> int | None:
        if self.code is not None:
            return self.code
        try:
            os.kill(self.pid, 0)
            return None
        except ProcessLookupError:
            pass
        except PermissionError:
            return None
        # Reaped, and the zygote's word on how it ended is on its way; if it never comes, say 1.
        now = time.monotonic()
        if self._gone_since is None:
            self._gone_since = now
        return 1 if now - self._gone_since > 1.0 else None


class ZygoteSpawner:
    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.fallback = DirectSpawner()
        self._pending: list[asyncio.Future[_ZygoteChild]] = []
        self._children: dict[int, _ZygoteChild] = {}
        self._ready: asyncio.Future[int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self, timeout: float = 30.0) -> bool:
        """Start the zygote and wait until it has imported the console; False (fallback) if it cannot."""
        self._loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # The allow-list only: a forked console's /proc/PID/environ is the zygote's, whatever
            # its os.environ says after the fork, so nothing else may be in it to begin with.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "console.cli.servers.zygote", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env=base_environment(),
                start_new_session=True,
            )
        except OSError:
            ours.close()
            return False
        finally:
            theirs.close()
        ours.setblocking(False)
        self.sock = ours
        self._ready = self._loop.create_future()
        self._loop.add_reader(ours.fileno(), self._readable)
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except (TimeoutError, ConnectionError):
            self._lost()
            return False
        return True

    @property
    def alive(self) -> bool:
        return self.sock is not None

    def _readable(self) -> None:
        assert self.sock is not None
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._lost()
            return
        message: dict[str, Any] = json.loads(data)
        if "ready" in message and self._ready is not None and not self._ready.done():
            self._ready.set_result(int(message["ready"]))
        elif "exited" in message:
            child = self._children.pop(int(message["exited"]), None)
            if child is not None:
                child.code = int(message["code"])
        elif self._pending:
            future = self._pending.pop(0)
            if not future.done():
                if "pid" in message:
                    # Registered here, not by the awaiting coroutine: the exit notice may come next.
                    child = self._children[int(message["pid"])] = _ZygoteChild(int(message["pid"]))
                    future.set_result(child)
                else:
                    future.set_exception(OSError(message.get("error", "the zygote refused")))

    def _lost(self) -> None:
        """The zygote is gone: pending requests fail over to a fresh interpreter; running consoles go on."""
        if self.sock is not None and self._loop is not None:
            self._loop.remove_reader(self.sock.fileno())
            self.sock.close()
        self.sock = None
        for future in self._pending:
            if not future.done():
                future.set_exception(ConnectionError("the zygote is gone"))
        self._pending.clear()
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(ConnectionError("the zygote did not start"))

    async def spawn(self, args: Sequence[str], env: dict[str, str], cwd: Path | None, slave: int) -> Child:
        if self.sock is None or self._loop is None:
            return await self.fallback.spawn(args, env, cwd, slave)
        request = json.dumps({"args": list(args), "env": env, "cwd": str(cwd) if cwd else os.getcwd()}).encode()
        future: asyncio.Future[_ZygoteChild] = self._loop.create_future()
        self._pending.append(future)
        try:
            self.sock.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [slave]))])
            return await asyncio.wait_for(future, 10.0)
        except (TimeoutError, OSError):
            if future in self._pending:
                self._pending.remove(future)
            return await self.fallback.spawn(args, env, cwd, slave)

    def close(self) -> None:
        self._lost()
        if self.process is not None:
            try:
                self.process.wait(5)  # it exits when its socket closes
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
