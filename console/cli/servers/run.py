"""Running ``drconsole serve ssh`` in the foreground: listen, say where, stop cleanly on SIGTERM/SIGINT.

Stopping hangs every console up and waits for them, so each session's end is in the audit log
before the process exits (systemd's stop, a Ctrl-C in a terminal). SIGHUP re-reads the users
file (``systemctl reload``): new sessions use it, open ones keep going; a file that no longer
validates is reported and the users in force stay as they were.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncssh

from console.cli.servers.ssh import SSHConsoleServer
from console.cli.servers.users import Users, UsersFileError, load_users
from console.output import EXIT_OK, Output

__all__ = ["run_ssh_server"]


async def _serve(server: SSHConsoleServer, output: Output) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    loop.add_signal_handler(signal.SIGHUP, _reload, server, output)
    port = await server.start()
    config = server.config if server.config is not None else "the demo workspace"
    output.note(
        f"serving the console over SSH on {server.host}:{port} ({len(server.users)} users, "
        f"config {config}); connect with: ssh -t -p {port} USER@{server.host}"
    )
    try:
        await stop.wait()
    finally:
        await server.close()


def _reload(server: SSHConsoleServer, output: Output) -> None:
    try:
        server.users = load_users(server.users.path)
    except UsersFileError as exc:
        output.note(f"users file not reloaded, the previous {len(server.users)} users stay: {exc.message}")
        return
    output.note(f"reloaded {server.users.path}: {len(server.users)} users")


def run_ssh_server(
    host_key: asyncssh.SSHKey,
    users: Users,
    *,
    host: str,
    port: int,
    config: Path | None,
    max_sessions: int,
    output: Output,
    responder_seats: int = 4,
) -> int:
    server = SSHConsoleServer(
        host_key, users, host=host, port=port, config=config, max_sessions=max_sessions, responder_seats=responder_seats
    )
    asyncio.run(_serve(server, output))
    return EXIT_OK
