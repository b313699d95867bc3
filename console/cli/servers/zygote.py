"""``python -m console.cli.servers.zygote FD``: a process that has imported the console, and forks one per session.

Starting a console is mostly importing it (Textual, the app, its screens: about 0.6 s of CPU);
a session's first frame should not wait for that. The SSH server starts this once; for each
session it sends, over a SOCK_SEQPACKET socket, ``{"args", "env", "cwd"}`` with the pty's slave
as an SCM_RIGHTS descriptor. The zygote forks: the child becomes the session leader of that
terminal (TIOCSCTTY, so SIGWINCH and hang-ups reach it), takes the given environment and runs
``drconsole ARGS``; the zygote answers ``{"pid"}``, reaps its children and reports
``{"exited": pid, "code": n}``. It never runs an app itself, so every session starts from the
same clean, imported state; it is single-threaded, so forking it is safe.

When the server's end of the socket closes (the server stopped or died), the zygote exits; its
consoles then lose their terminal's other end and get SIGHUP from the kernel.
"""

from __future__ import annotations

import array
import importlib
import json
import os
import select
import signal
import socket
import sys
from typing import Any

import console.cli.main
from console.cli.servers.session_main import take_terminal

__all__ = ["serve"]

# What a session imports anyway, measured (sys.modules after `drconsole tui|dashboard`): imported
# once here, shared copy-on-write by every fork. A name here that no longer exists costs nothing.
PRELOAD = (
    "console.tui.app",
    "console.tui.launch",
    "console.config",
    "console.cli.console",
    "console.tui.demo",
    "console.adapters.run_adapter",
    "console.adapters.triage_adapter",
    "console.tui.screens.dashboard",
    "console.tui.screens.overview",
    "fleet",
    "fleet.local",
    "fleet.http",
    "fleet.mixed",
    "playbooks.actions",
    "playbooks.probes",
    "playbooks.evidence",
    "engines.backup",
    "engines.node",
    "textual.drivers.linux_driver",
    "textual.scrollbar",
    "textual.layouts.horizontal",
    "textual.layouts.stream",
    "httpx",
    "psutil",
    "themes",
)
for _name in PRELOAD:
    try:
        importlib.import_module(_name)
    except ImportError:
        pass

_MAX_MESSAGE = 1 << 20


def _receive(sock: socket.socket) -> tuple[dict[str, Any], int] | None:
    fds = array.array("i")
    data, ancillary, _flags, _address = sock.recvmsg(_MAX_MESSAGE, socket.CMSG_SPACE(fds.itemsize))
    if not data:
        return None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
    return json.loads(data), (fds[0] if fds else -1)


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.send(json.dumps(message).encode())


def _child(request: dict[str, Any], slave: int, sock: socket.socket, wakeup: tuple[int, int]) -> None:
    """In the forked child: become the console of ``slave``; never returns."""
    code = 1
    try:
        sock.close()
        signal.set_wakeup_fd(-1)
        for fd in wakeup:
            os.close(fd)
        for number in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, signal.SIG_DFL)
        os.setsid()
        for target in (0, 1, 2):
            os.dup2(slave, target)
        if slave > 2:
            os.close(slave)
        take_terminal()
        os.chdir(request.get("cwd") or "/")
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["drconsole", *request["args"]]
        code = console.cli.main.main(request["args"])
    except BaseException:  # noqa: BLE001 - the child must end here, whatever happened
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code if isinstance(code, int) else 1)


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(sock, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def serve(fd: int) -> int:
    sock = socket.socket(fileno=fd)
    reaper_r, reaper_w = os.pipe()
    os.set_blocking(reaper_w, False)
    signal.set_wakeup_fd(reaper_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes select via the wakeup fd
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C for the server is the server's to handle
    _send(sock, {"ready": os.getpid()})
    while True:
        readable, _, _ = select.select([sock.fileno(), reaper_r], [], [])
        if reaper_r in readable:
            os.read(reaper_r, 4096)
            _reap(sock)
        if sock.fileno() not in readable:
            continue
        try:
            received = _receive(sock)
        except (OSError, ValueError):
            received = None
        if received is None:
            return 0  # the server is gone
        request, slave = received
        if slave < 0:
            _send(sock, {"error": "no terminal descriptor came with the request"})
            continue
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(slave)
            _send(sock, {"error": f"fork failed: {exc}"})
            continue
        if pid == 0:
            _child(request, slave, sock, (reaper_r, reaper_w))
        os.close(slave)
        _send(sock, {"pid": pid})


if __name__ == "__main__":
    sys.exit(serve(int(sys.argv[1])))
