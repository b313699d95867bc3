"""The SSH server's life: reloading the users file, and stopping with sessions open (slow: own servers)."""

from __future__ import annotations

import signal
from pathlib import Path

import psutil
import pytest
from serve_kit import SSH, ServerProcess, SshTerminal, audit_entries, make_fleet, make_key, wait_until, write_users

from console.cli.main import main as cli_main

pytestmark = [pytest.mark.slow, pytest.mark.skipif(SSH is None, reason="the system ssh client is not installed")]


def _server(root: Path, users: Path) -> ServerProcess:
    host_key = root / "host_key"
    assert cli_main(["serve", "ssh", "--generate-host-key", str(host_key)]) == 0
    return ServerProcess(
        ["ssh", "--port", "0", "--host-key", str(host_key), "--users", str(users), "--config", str(make_fleet(root))],
        root,
        pattern=r"on 127\.0\.0\.1:(\d+)",
    )


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if p.status() != psutil.STATUS_ZOMBIE]
    except psutil.NoSuchProcess:
        return []


def test_sighup_reloads_the_users_file_and_a_bad_one_is_ignored(tmp_path: Path) -> None:
    alice, erin = make_key(tmp_path / "alice"), make_key(tmp_path / "erin")
    users = write_users(tmp_path / "users.toml", [("alice", "viewer", [alice])])
    server = _server(tmp_path, users)
    try:
        refused = SshTerminal(server.port, "erin", tmp_path / "erin")
        assert refused.exit_code() == 255
        refused.close()
        write_users(users, [("alice", "viewer", [alice]), ("erin", "viewer", [erin])])
        server.process.send_signal(signal.SIGHUP)
        assert wait_until(lambda: any("2 users" in line for line in server.lines), 10), server.lines
        welcome = SshTerminal(server.port, "erin", tmp_path / "erin")
        welcome.wait_for("Dashboard")
        welcome.close()
        users.write_text('[[user]]\nname = "erin"\nrole = "root"\nkeys = []\n', encoding="utf-8")
        server.process.send_signal(signal.SIGHUP)
        assert wait_until(lambda: any("not reloaded" in line for line in server.lines), 10), server.lines
        still = SshTerminal(server.port, "erin", tmp_path / "erin")  # the users in force stay
        still.wait_for("Dashboard")
        still.close()
        assert server.process.poll() is None
    finally:
        server.stop()


def test_stopping_the_server_hangs_up_every_console_and_records_the_ends(tmp_path: Path) -> None:
    keys = {name: make_key(tmp_path / name) for name in ("alice", "bob")}
    users = write_users(
        tmp_path / "users.toml", [("alice", "responder", [keys["alice"]]), ("bob", "viewer", [keys["bob"]])]
    )
    server = _server(tmp_path, users)
    terminals = [SshTerminal(server.port, name, tmp_path / name) for name in ("alice", "bob", "bob")]
    try:
        for terminal in terminals:
            terminal.wait_for("orders")
        everything = _descendants(server.pid)
        assert len(everything) == 4  # the zygote and three consoles
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(10) == 0
        assert wait_until(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in everything), 5)
        ends = [entry for entry in audit_entries(tmp_path) if entry["action"] == "session_end"]
        assert sorted(entry["who"]["user"] for entry in ends) == ["alice", "bob", "bob"]
        assert {entry["outcome"] for entry in ends} == {"server-stopped"}
        for terminal in terminals:
            terminal.exit_code(10)  # every client sees its connection end
    finally:
        for terminal in terminals:
            terminal.close()
        server.stop()
