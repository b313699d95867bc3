"""``drconsole serve ssh``: one console per SSH session, on its own pseudo-terminal, by role.

    SSHConsoleServer(host_key, users, host=..., port=..., config=...).start() / .close()

Public-key authentication only; the key says who connected (console.cli.servers.users). Each session
must ask for a terminal (``ssh -t``): its console (``drconsole tui`` for a responder, the
read-only dashboard for a viewer, console.cli.servers.roles) runs on a pty of the client's size and
TERM, bytes go both ways, and a resize reaches the console as TIOCSWINSZ + SIGWINCH. Anything
else (a command, a subsystem such as sftp, port or agent forwarding) is refused: this server
gives a console, never a shell. When the connection drops the console is hung up (SIGHUP to its
group, SIGKILL after a grace period). Each session's start and end go to the audit log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh

from console.cli.servers.audit import SessionAudit
from console.cli.servers.pty_console import PtyConsole
from console.cli.servers.roles import console_args, console_environment
from console.cli.servers.spawners import DirectSpawner, Spawner, ZygoteSpawner
from console.cli.servers.users import User, Users
from playbooks.audit import AuditLog
from playbooks.state import StateDir

__all__ = ["SSHConsoleServer", "NO_PTY_MESSAGE", "EXIT_NO_PTY"]

NO_PTY_MESSAGE = "drconsole: this server gives a console on a terminal: use ssh -t (and no command)\r\n"
EXIT_NO_PTY = 2
HANGUP_GRACE_SECONDS = 2.0  # SIGHUP, then SIGKILL after this: well inside the 5 s a dropped console may take


class _Session(asyncssh.SSHServerSession[bytes]):
    """One SSH session: its pty console, its audit lines."""

    def __init__(self, server: SSHConsoleServer, user: User, client: str) -> None:
        self.server = server
        self.user = user
        self.client = client
        self.chan: asyncssh.SSHServerChannel[bytes] | None = None
        self.console: PtyConsole | None = None
        self.audit = SessionAudit(user=user.name, role=user.role, client=client, via="ssh", log=server.audit_log())
        self.pty: tuple[str, int, int] | None = None
        self.command: str | None = None

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:  # type: ignore[override]
        self.chan = chan

    def pty_requested(self, term_type: str, term_size: tuple[int, int, int, int], term_modes: Any) -> bool:
        self.pty = (term_type, term_size[0] or 80, term_size[1] or 24)
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        self.command = command  # refused with a message once the session starts (the client sees why)
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        return False

    def session_started(self) -> None:
        assert self.chan is not None
        if self.pty is None or self.command is not None:
            why = "no terminal" if self.pty is None else f"a command was given ({self.command!r})"
            self.audit.refused(f"{why}: use ssh -t")
            self.chan.write_stderr(NO_PTY_MESSAGE.encode())
            self.chan.exit(EXIT_NO_PTY)
            return
        refusal = self.server.admit(self)
        if refusal is not None:
            self.audit.refused(refusal)
            self.chan.write_stderr(f"drconsole: {refusal}; try again later\r\n".encode())
            self.chan.exit(4)
            return
        term, cols, rows = self.pty
        env = console_environment(self.user.role, user=self.user.name, client=self.client, term=term)
        self.console = PtyConsole(
            self.server.console_args(self.user.role, self.server.config),
            env,
            cols=cols,
            rows=rows,
            cwd=self.server.cwd,
            spawner=self.server.spawner,
            on_output=self._output,
            on_exit=self._console_exited,
        )
        self.audit.start()
        self.server.track(self._start_console(self.console))

    async def _start_console(self, console: PtyConsole) -> None:
        try:
            await console.start()
        except Exception as exc:  # noqa: BLE001 - whatever failed, the client is told and the slot freed
            self.server.release(self)
            self.audit.end("error", f"the console could not start: {exc}")
            if self.chan is not None:
                self.chan.write_stderr(f"drconsole: the console could not start: {exc}\r\n".encode())
                self.chan.exit(1)
            return
        if self.chan is None:  # the client left while it was starting
            await console.hang_up(HANGUP_GRACE_SECONDS)

    # ------------------------------------------------------------ both ways
    def _output(self, data: bytes) -> None:
        if self.chan is not None:
            self.chan.write(data)

    def data_received(self, data: bytes, datatype: Any) -> None:
        if self.console is not None:
            self.console.write(data)

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        if self.console is not None:
            self.console.resize(width, height, pixwidth, pixheight)

    def pause_writing(self) -> None:  # the client reads slower than the console draws
        if self.console is not None:
            self.console.pause_reading()

    def resume_writing(self) -> None:
        if self.console is not None:
            self.console.resume_reading()

    def eof_received(self) -> bool:
        return False  # keep the channel open; the console decides when the session ends

    # ------------------------------------------------------------ end
    def _console_exited(self, code: int) -> None:
        self.server.release(self)
        self.audit.end("ok", f"the console exited with {code}", exit_status=code)
        if self.chan is not None:
            self.chan.exit(code)

    def connection_lost(self, exc: Exception | None) -> None:
        self.chan = None
        if self.console is not None and self.console.returncode is None:
            self.audit.end("disconnected", f"the client went away ({exc or 'closed'}); console hung up")
            if self.console.process is not None:  # else _start_console hangs it up once started
                self.server.track(self.console.hang_up(HANGUP_GRACE_SECONDS))


class _Connection(asyncssh.SSHServer):
    def __init__(self, server: SSHConsoleServer) -> None:
        self.server = server
        self.conn: asyncssh.SSHServerConnection | None = None
        self.user: User | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        user = self.server.users.authenticate(username, key)
        if user is not None:
            self.user = user
        return user is not None

    def session_requested(self) -> _Session | bool:
        if self.user is None or self.conn is None:
            return False
        peer = self.conn.get_extra_info("peername") or ("", 0)
        local = self.conn.get_extra_info("sockname") or ("", 0)
        return _Session(self.server, self.user, f"{peer[0]} {peer[1]} {local[1]}")


class SSHConsoleServer:
    def __init__(
        self,
        host_key: asyncssh.SSHKey,
        users: Users,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        config: Path | None = None,
        max_sessions: int = 32,
        responder_seats: int = 4,
        cwd: Path | None = None,
        console_args: Callable[[str, Path | None], list[str]] = console_args,
        audit_log: Callable[[], AuditLog] | None = None,
        spawner: Spawner | None = None,
    ) -> None:
        self.host_key = host_key
        self.users = users
        self.host = host
        self.port = port
        self.config = config
        self.max_sessions = max_sessions
        # Seats only responders may take: wall screens reconnecting in a loop must never lock the
        # people fixing the incident out of their console.
        self.responder_seats = min(responder_seats, max_sessions)
        self.cwd = cwd
        self.console_args = console_args  # a bench runs `true` here to measure SSH alone
        # None: a zygote that has imported the console forks each one (first frame in a fraction
        # of the time a fresh interpreter takes); it falls back to DirectSpawner on its own.
        self.spawner: Spawner = spawner or DirectSpawner()
        self._zygote = spawner is None
        self._audit_log = audit_log
        self.sessions: set[_Session] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._acceptor: asyncssh.SSHAcceptor | None = None

    def audit_log(self) -> AuditLog:
        return self._audit_log() if self._audit_log is not None else AuditLog(StateDir().audit_log)

    async def start(self) -> int:
        """Listen; the port actually bound (``port=0`` picks a free one)."""
        if self._zygote:
            zygote = ZygoteSpawner()
            if await zygote.start():
                self.spawner = zygote
        self._acceptor = await asyncssh.create_server(
            lambda: _Connection(self),
            self.host,
            self.port,
            server_host_keys=[self.host_key],
            encoding=None,
            line_editor=False,
            password_auth=False,
            kbdint_auth=False,
            agent_forwarding=False,
            x11_forwarding=False,
            allow_scp=False,
            login_timeout=30,
            keepalive_interval=15,
            keepalive_count_max=3,
        )
        self.port = int(self._acceptor.sockets[0].getsockname()[1])
        return self.port

    def admit(self, session: _Session) -> str | None:
        """Take a seat for ``session``; None when admitted, else why not (said to the client, audited)."""
        if len(self.sessions) >= self.max_sessions:
            return f"the server is at its limit of {self.max_sessions} sessions"
        viewer_limit = self.max_sessions - self.responder_seats
        if session.user.role != "responder" and len(self.sessions) >= viewer_limit:
            return (
                f"the server keeps its last {self.responder_seats} of {self.max_sessions} seats for responders "
                "and the others are taken"
            )
        self.sessions.add(session)
        return None

    def release(self, session: _Session) -> None:
        self.sessions.discard(session)

    def track(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def console_pids(self) -> list[int]:
        return [session.console.pid for session in self.sessions if session.console is not None]

    async def close(self) -> None:
        """Stop listening, hang up every console, and wait for them (their session_end lines are written)."""
        if self._acceptor is not None:
            self._acceptor.close()
        for session in list(self.sessions):
            if session.console is not None and session.console.returncode is None:
                session.audit.end("server-stopped", "the server stopped; console hung up")
                self.track(session.console.hang_up(HANGUP_GRACE_SECONDS))
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._acceptor is not None:
            await self._acceptor.wait_closed()
        if isinstance(self.spawner, ZygoteSpawner):
            self.spawner.close()
