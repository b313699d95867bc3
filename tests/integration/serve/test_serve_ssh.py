"""``drconsole serve ssh`` with the system ssh client: sessions render, resize, keep to their role, and end.

One server process per module (a real subprocess on a free loopback port); each test connects as
its own user so that its audit lines are its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from serve_kit import SSH, ServerProcess, SshTerminal, audit_entries, make_fleet, make_key, wait_until, write_users

from console.cli.main import main as cli_main

pytestmark = pytest.mark.skipif(SSH is None, reason="the system ssh client is not installed")

USERS = {"alice": "responder", "bob": "viewer", "carol": "viewer", "dave": "responder"}


class Setup:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.keys = {}
        public = {}
        for name in USERS:
            self.keys[name] = root / f"{name}_key"
            public[name] = make_key(self.keys[name])
        self.host_key = root / "host_key"
        assert cli_main(["serve", "ssh", "--generate-host-key", str(self.host_key)]) == 0
        self.users = write_users(root / "users.toml", [(name, role, [public[name]]) for name, role in USERS.items()])
        self.config = make_fleet(root)
        self.server = ServerProcess(
            [
                "ssh",
                "--port",
                "0",
                "--host-key",
                str(self.host_key),
                "--users",
                str(self.users),
                "--config",
                str(self.config),
            ],
            root,
            pattern=r"on 127\.0\.0\.1:(\d+)",
            env={"DRCONSOLE_TEST_SECRET": "hunter2"},
        )

    def terminal(self, user: str, **options: object) -> SshTerminal:
        return SshTerminal(self.server.port, user, self.keys[user], **options)  # type: ignore[arg-type]

    def sessions(self, user: str) -> list[dict[str, Any]]:
        return [entry for entry in audit_entries(self.root) if entry["who"]["user"] == user]

    def console_processes(self) -> list[psutil.Process]:
        """Every live process under the server but its zygote (which forks the consoles and stays)."""
        found = []
        for child in psutil.Process(self.server.pid).children(recursive=True):
            try:
                if child.status() == psutil.STATUS_ZOMBIE:
                    continue
                if child.ppid() == self.server.pid and "console.cli.servers.zygote" in " ".join(child.cmdline()):
                    continue
            except psutil.NoSuchProcess:
                continue
            found.append(child)
        return found


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    made = Setup(tmp_path_factory.mktemp("serve-ssh"))
    yield made
    made.server.stop()


@pytest.fixture
def terminals() -> Iterator[list[SshTerminal]]:
    opened: list[SshTerminal] = []
    yield opened
    for terminal in opened:
        terminal.close()


def test_a_responder_session_renders_the_console_and_follows_a_resize(
    setup: Setup, terminals: list[SshTerminal]
) -> None:
    terminal = setup.terminal("alice", cols=100, rows=30)
    terminals.append(terminal)
    terminal.wait_for("Overview")
    screen = terminal.wait_for("orders")  # the fleet of --config, read from its data dir
    assert "READ-ONLY" not in screen
    assert b"\x1b[31;1H" not in terminal.output()  # nothing drawn below row 30 yet
    terminal.resize(150, 40)
    # The console re-lays out for 150 x 40: its key bar moves to the new last row, full width.
    assert wait_until(lambda: "palette" in terminal.screen.display[39], 10), terminal.text()
    assert terminal.screen.display[39].rstrip().endswith("palette")
    assert len(terminal.screen.display[39].rstrip()) > 100
    # Keys reach the app: 2 opens Triage for a responder (the viewer test sends the same keys).
    terminal.send(b"2")
    terminal.wait_for("Triage of")
    terminal.send(b"\x11")  # ctrl+q
    assert terminal.exit_code() == 0
    assert wait_until(lambda: [e["action"] for e in setup.sessions("alice")] == ["session_start", "session_end"], 5)
    start, end = setup.sessions("alice")
    assert start["role"] == "responder" and start["client_address"] == "127.0.0.1"
    assert start["who"]["ssh_client"].startswith("127.0.0.1 ")
    assert end["session"] == start["session"] and end["duration_seconds"] > 0 and end["exit_status"] == 0


def test_a_viewer_session_is_the_dashboard_and_no_key_acts(setup: Setup, terminals: list[SshTerminal]) -> None:
    terminal = setup.terminal("bob")
    terminals.append(terminal)
    terminal.wait_for("Dashboard")
    screen = terminal.wait_for("orders")
    assert "READ-ONLY" in screen
    # Every key that acts somewhere: screens, triage answers, silence (s on the Overview), start and
    # resume a run, export, incident, the palette's "Start run", enter and tab on whatever has focus.
    for keys in (
        b"2",
        b"a",
        b"y",
        b"3",
        b"s",
        b"r",
        b"4",
        b"e",
        b"i",
        b"\t\r",
        b"\x10",
        b"start run\r",
        b"\x1b",
        b"1",
        b"\r",
    ):
        terminal.send(keys)
        time.sleep(0.05)
    time.sleep(1.0)
    screen = terminal.text()
    assert "Dashboard" in screen and "Triage of" not in screen
    state = setup.root / "state"
    assert sorted(path.name for path in state.iterdir()) == ["audit.head", "audit.jsonl"]  # no run, no incident
    assert list((setup.root / "reports").iterdir()) == []  # no report exported
    assert [entry["action"] for entry in setup.sessions("bob")] == ["session_start"]  # no action audited
    terminal.send(b"\x11")
    assert terminal.exit_code() == 0
    assert wait_until(lambda: [e["action"] for e in setup.sessions("bob")] == ["session_start", "session_end"], 5)
    assert setup.sessions("bob")[0]["role"] == "viewer"


def test_a_session_without_a_terminal_is_refused(setup: Setup, terminals: list[SshTerminal]) -> None:
    for options in ({"tty": False}, {"command": ["sh", "-c", "id"]}):
        terminal = setup.terminal("dave", **options)
        terminals.append(terminal)
        assert terminal.exit_code() == 2
        assert wait_until(lambda terminal=terminal: b"use ssh -t" in terminal.output(), 5)
        assert b"uid=" not in terminal.output()
    assert [entry["action"] for entry in setup.sessions("dave")] == ["session_refused", "session_refused"]


def test_a_dropped_client_leaves_no_console_behind(setup: Setup, terminals: list[SshTerminal]) -> None:
    terminal = setup.terminal("carol")
    terminals.append(terminal)
    terminal.wait_for("Dashboard")
    consoles = setup.console_processes()
    assert len(consoles) == 1
    # None of the server's secrets in the console's environment (its zygote never had them either).
    assert psutil.Process(setup.server.pid).environ()["DRCONSOLE_TEST_SECRET"] == "hunter2"
    assert "DRCONSOLE_TEST_SECRET" not in consoles[0].environ()
    assert "DRCONSOLE_TEST_SECRET" not in consoles[0].parent().environ()
    dropped = time.monotonic()
    terminal.kill9()  # the client dies without a goodbye: the kernel closes its socket
    assert wait_until(lambda: not setup.console_processes(), 5.0), setup.console_processes()
    gone_after = time.monotonic() - dropped
    assert gone_after < 5.0
    assert not psutil.pid_exists(consoles[0].pid) or consoles[0].status() == psutil.STATUS_ZOMBIE
    assert wait_until(lambda: [e["action"] for e in setup.sessions("carol")] == ["session_start", "session_end"], 5)
    assert setup.sessions("carol")[1]["outcome"] == "disconnected"


def test_a_wrong_key_is_not_let_in(setup: Setup, terminals: list[SshTerminal]) -> None:
    terminal = SshTerminal(setup.server.port, "alice", setup.keys["bob"])  # bob's key, alice's name
    terminals.append(terminal)
    assert terminal.exit_code() == 255
    assert b"Permission denied" in terminal.output()
    assert not setup.console_processes()


def test_viewers_cannot_take_the_seats_kept_for_responders(tmp_path: Path, terminals: list[SshTerminal]) -> None:
    made = Setup(tmp_path)  # a server of its own: 2 sessions, 1 kept for responders
    made.server.stop()
    made.server = ServerProcess(
        [
            "ssh",
            "--port",
            "0",
            "--host-key",
            str(made.host_key),
            "--users",
            str(made.users),
            "--config",
            str(made.config),
            "--max-sessions",
            "2",
            "--responder-seats",
            "1",
        ],
        tmp_path,
        pattern=r"on 127\.0\.0\.1:(\d+)",
    )
    try:
        wall = made.terminal("bob")
        terminals.append(wall)
        wall.wait_for("Dashboard")
        second_wall = made.terminal("carol")  # a wall screen reconnecting: the last seat is not for it
        terminals.append(second_wall)
        assert second_wall.exit_code() == 4
        assert b"keeps its last 1 of 2 seats for responders" in second_wall.output()
        responder = made.terminal("alice")  # mid-incident, the responder still gets in
        terminals.append(responder)
        responder.wait_for("Overview")
        refused = [entry for entry in made.sessions("carol") if entry["action"] == "session_refused"]
        assert refused and "seats for responders" in refused[0]["detail"]
    finally:
        made.server.stop()
