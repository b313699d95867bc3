"""``drconsole status``: a running fleet of real node processes in one table; exit 1 once one is down."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from integration.node.node_support import wait_until

from engines.node.client import NodeClient

DRCONSOLE = Path(sys.executable).with_name("drconsole")


def _status(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DRCONSOLE), "--config", str(config), "status", *args], capture_output=True, text=True, timeout=60
    )


def test_status_lists_a_running_fleet_and_fails_when_a_node_dies(node_process, tmp_path: Path) -> None:
    primary = node_process("orders-a")
    standby = node_process("orders-b", "--follow", primary.url)
    with NodeClient(primary.url) as client:
        for index in range(20):
            client.put(f"k{index}".encode(), b"v")
    wait_until(lambda: httpx.get(f"{standby.url}/replication").json()["applied_lsn"] == 20)
    config = tmp_path / "drconsole.toml"
    config.write_text(
        f'[[node]]\nname = "orders-a"\nurl = "{primary.url}"\n\n'
        f'[[node]]\nname = "orders-b"\nurl = "{standby.url}"\nupstream = "orders-a"\n'
    )

    done = _status(config, "--json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["healthy"] is True and payload["version"]
    rows = {row["name"]: row for row in payload["nodes"]}
    assert rows["orders-a"]["role"] == "primary" and rows["orders-a"]["last_lsn"] == 20
    assert rows["orders-b"]["role"] == "standby" and rows["orders-b"]["lag_records"] == 0
    assert {row["engine"] for row in rows.values()} == {"lsm"}

    table = _status(config)
    assert table.returncode == 0 and table.stderr == ""
    header, *lines = table.stdout.splitlines()[1:]
    assert header.split() == ["NODE", "ENGINE", "ROLE", "EPOCH", "LSN", "LAG", "HEALTH", "DISK", "BACKUP", "ALERTS"]
    assert [line.split()[:3] for line in lines] == [["orders-a", "lsm", "primary"], ["orders-b", "lsm", "standby"]]
    assert all("✔ OK" in line for line in lines)

    standby.kill(signal.SIGKILL)
    down = _status(config, "--json")
    assert down.returncode == 1
    rows = {row["name"]: row for row in json.loads(down.stdout)["nodes"]}
    assert rows["orders-b"]["health"] == "down" and rows["orders-a"]["health"] == "ok"


def _start_watch(tmp_path: Path, name: str, url: str) -> subprocess.Popen[str]:
    """``status --watch 0.2`` of a config holding the one node ``name`` at ``url``."""
    config = tmp_path / "drconsole.toml"
    config.write_text(f'[[node]]\nname = "{name}"\nurl = "{url}"\n')
    return subprocess.Popen(
        [str(DRCONSOLE), "--config", str(config), "status", "--watch", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_watch_redraws_until_interrupted(node_process, tmp_path: Path) -> None:
    watcher = _start_watch(tmp_path, "solo", node_process("solo").url)
    try:
        time.sleep(3)
        watcher.send_signal(signal.SIGINT)
        out, err = watcher.communicate(timeout=30)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert watcher.returncode == 0, err
    assert out.count("NODE  ") >= 2 and "ctrl+c to stop" in out


class _SilentNode:
    """A loopback port that accepts connections and never answers: each snapshot waits out its deadline."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.held.append(self.server.accept()[0])

    def close(self) -> None:
        self.server.close()
        for connection in self.held:
            connection.close()


def _interrupt_watch(tmp_path: Path, pauses: tuple[float, ...]) -> tuple[int, str, str, float]:
    """Watch a node that never answers; after its first table, a SIGINT after each of ``pauses``.

    (exit code, what it printed after the first table, stderr, seconds from the last SIGINT to exit)
    """
    node = _SilentNode()
    watcher = _start_watch(tmp_path, "mute", node.url)
    try:
        # The first table (the node down, after the 2 s deadline): ctrl+c is then the loop's own.
        assert watcher.stdout is not None
        assert "NODE  " in watcher.stdout.readline() + watcher.stdout.readline()
        for pause in pauses:
            time.sleep(pause)
            asked = time.monotonic()
            watcher.send_signal(signal.SIGINT)
        out, err = watcher.communicate(timeout=30)
        return watcher.returncode, out, err, time.monotonic() - asked
    finally:
        if watcher.poll() is None:
            watcher.kill()
        node.close()


def test_ctrl_c_during_a_snapshot_ends_the_watch_after_it(tmp_path: Path) -> None:
    # 0.5 s: inside the next snapshot, which waits 2 s for the node.
    code, out, err, took = _interrupt_watch(tmp_path, (0.5,))
    assert code == 1, err  # the last table drawn had the node down
    assert took < 10, took  # the snapshot's deadline, then out
    assert "NODE  " not in out  # nothing drawn after the ctrl+c
    assert "Traceback" not in err and "interrupted" not in err


def test_a_second_ctrl_c_stops_the_watch_at_once(tmp_path: Path) -> None:
    code, _out, err, took = _interrupt_watch(tmp_path, (0.3, 0.2))
    assert took < 1.5, took  # not the rest of the 2 s deadline
    assert code == 1, err
    assert "Traceback" not in err


def test_watch_with_json_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "drconsole.toml"
    config.write_text('[[node]]\nname = "x"\nurl = "http://127.0.0.1:9"\n')
    done = _status(config, "--watch", "--json")
    assert done.returncode == 2 and "cannot be combined with --json" in done.stderr
    assert os.path.exists(config)
