"""One console process on its own pseudo-terminal, driven from an asyncio loop.

``PtyConsole.start`` opens a pty, sets its size, and has a spawner (console.cli.servers.spawners: a
fork of the preloaded zygote, or a fresh interpreter) start ``drconsole ARGS`` on the slave in a
new session (its own process group). Output is read from the
master without blocking the loop and handed to ``on_output``; ``pause_reading`` stops reading
when the client cannot keep up, so a slow link slows the console instead of filling memory.
``hang_up`` ends it the way a terminal hang-up does (SIGHUP to the group), then SIGKILL after a
grace period: whatever the console was doing, nothing of it is left running.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import pty
import signal
import struct
import termios
from collections.abc import Callable, Sequence
from pathlib import Path

from console.cli.servers.spawners import Child, DirectSpawner, Spawner

__all__ = ["PtyConsole", "set_window_size"]

_MAX_PENDING_INPUT = 64 * 1024  # keystrokes waiting for the console; beyond this a paste is cut


def set_window_size(fd: int, cols: int, rows: int, width_px: int = 0, height_px: int = 0) -> None:
    cols, rows = max(1, min(int(cols), 1000)), max(1, min(int(rows), 1000))
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, width_px, height_px))


class PtyConsole:
    def __init__(
        self,
        args: Sequence[str],
        env: dict[str, str],
        *,
        cols: int = 80,
        rows: int = 24,
        cwd: Path | None = None,
        spawner: Spawner | None = None,
        on_output: Callable[[bytes], None] | None = None,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        self.args = list(args)
        self.env = env
        self.cols, self.rows = cols, rows
        self.cwd = cwd
        self.on_output = on_output or (lambda data: None)
        self.on_exit = on_exit or (lambda code: None)
        self.spawner: Spawner = spawner or DirectSpawner()
        self.process: Child | None = None
        self.master = -1
        self.returncode: int | None = None
        self._pending = b""
        self._reading = False
        self._eof = False
        self._exited = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watch: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        master, slave = pty.openpty()
        try:
            set_window_size(slave, self.cols, self.rows)
            self.process = await self.spawner.spawn(self.args, self.env, self.cwd, slave)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)  # the child holds it now: EOF on the master means the console is gone
        self.master = master
        os.set_blocking(master, False)
        self.resume_reading()
        self._watch = asyncio.ensure_future(self._watch_exit())
        self._flush_input()  # keys typed while it was starting

    # ------------------------------------------------------------- output
    def pause_reading(self) -> None:
        if self._reading and self._loop is not None:
            self._loop.remove_reader(self.master)
            self._reading = False

    def resume_reading(self) -> None:
        if not self._reading and not self._eof and self.master >= 0 and self._loop is not None:
            self._loop.add_reader(self.master, self._readable)
            self._reading = True

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO: every slave descriptor is closed, the console is gone
            if exc.errno not in (errno.EIO, errno.EBADF):
                raise
            data = b""
        if not data:
            self._eof = True
            self.pause_reading()
            return
        self.on_output(data)

    # ------------------------------------------------------------- input and size
    def write(self, data: bytes) -> None:
        if self.returncode is not None:
            return
        self._pending = (self._pending + data)[:_MAX_PENDING_INPUT]
        self._flush_input()

    def _flush_input(self) -> None:
        if self.master < 0 or self._loop is None:
            return
        while self._pending:
            try:
                written = os.write(self.master, self._pending)
            except BlockingIOError:
                self._loop.add_writer(self.master, self._flush_input)
                return
            except OSError:
                self._pending = b""
                break
            self._pending = self._pending[written:]
        self._loop.remove_writer(self.master)

    def resize(self, cols: int, rows: int, width_px: int = 0, height_px: int = 0) -> None:
        """New size on the pty, and SIGWINCH to the console's group (the kernel sends one too)."""
        self.cols, self.rows = cols, rows
        if self.master < 0 or self.returncode is not None:
            return  # not started yet: start() uses the new size
        set_window_size(self.master, cols, rows, width_px, height_px)
        self._signal(signal.SIGWINCH)

    # ------------------------------------------------------------- end
    def _signal(self, number: signal.Signals) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, number)  # its own session: the group id is its pid
        except (ProcessLookupError, PermissionError):
            pass

    async def _watch_exit(self) -> None:
        assert self.process is not None
        while self.process.poll() is None:
            await asyncio.sleep(0.05 if self._eof else 0.25)
        # The console is gone; anything it started in its group goes with it.
        self._signal(signal.SIGKILL)
        if self._reading:
            while not self._eof:  # the last frame and any goodbye it printed
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    break
                if not data:
                    break
                self.on_output(data)
        self.pause_reading()
        if self._loop is not None:
            self._loop.remove_writer(self.master)
        os.close(self.master)
        self.master = -1
        code = self.process.poll()
        assert code is not None
        self.returncode = code if code >= 0 else 128 - code  # killed by signal N: 128 + N, as a shell says
        self._exited.set()
        self.on_exit(self.returncode)

    async def wait(self) -> int:
        await self._exited.wait()
        assert self.returncode is not None
        return self.returncode

    async def hang_up(self, grace: float = 2.0) -> int:
        """SIGHUP to the console's group (a terminal hang-up); SIGKILL if it is still there after ``grace``."""
        if self.process is None:
            return 0
        if self.returncode is None:
            self._signal(signal.SIGHUP)
            try:
                await asyncio.wait_for(asyncio.shield(self._exited.wait()), grace)
            except TimeoutError:
                self._signal(signal.SIGKILL)
        return await self.wait()
