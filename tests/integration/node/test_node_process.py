"""``drconsole node`` as real processes: kill -9 loses no acknowledged write, SIGTERM exits 0, CLI exit codes."""

from __future__ import annotations

import concurrent.futures
import json
import signal
from pathlib import Path

import httpx
from integration.node.node_support import drconsole, free_port, wait_until

from engines.node.client import NodeClient


def test_acknowledged_puts_survive_kill_9(node_process, tmp_path: Path) -> None:
    node = node_process("crash")
    acknowledged: dict[bytes, int] = {}
    with NodeClient(node.url) as client:

        def put(i: int) -> None:
            key = f"acked-{i:04d}".encode()
            acknowledged[key] = client.put(key, f"value-{i}".encode())

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(put, range(400)))
    assert node.kill(signal.SIGKILL) == -signal.SIGKILL
    restarted = node_process("crash", port=node.port)
    with NodeClient(restarted.url) as client:
        missing = [key for key in acknowledged if client.get(key) is None]
        assert missing == []
        assert client.health()["last_lsn"] >= max(acknowledged.values())


def test_sigterm_shuts_down_cleanly_with_exit_0(node_process) -> None:
    node = node_process("term")
    with NodeClient(node.url) as client:
        client.put(b"k", b"v")
    assert node.kill(signal.SIGTERM) == 0
    assert node.process is not None
    assert b"engine closed" in node.process.stderr.read()  # type: ignore[union-attr]
    again = node_process("term", port=node.port)  # the lock was released: it opens again
    assert NodeClient(again.url).get(b"k") == b"v"


def test_cli_status_and_promote(node_process) -> None:
    primary = node_process("p")
    standby = node_process("s", "--follow", primary.url)
    NodeClient(primary.url).put(b"k", b"v")
    wait_until(lambda: httpx.get(f"{standby.url}/replication").json()["applied_lsn"] == 1)
    status = drconsole("node", "status", standby.url, "--json")
    assert status.returncode == 0, status.stderr
    payload = json.loads(status.stdout)
    assert payload["health"]["role"] == "standby" and payload["replication"]["lag_records"] == 0
    text = drconsole("node", "status", primary.url)
    assert text.returncode == 0 and "role primary" in text.stdout
    promoted = drconsole("node", "promote", standby.url, "--json")
    assert promoted.returncode == 0, promoted.stderr
    assert json.loads(promoted.stdout)["epoch"] == 1


def test_cli_exit_codes_for_unreachable_and_refused(tmp_path: Path, node_process) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    unreachable = drconsole("node", "status", nobody, "--json")
    assert unreachable.returncode == 3
    assert json.loads(unreachable.stdout)["exit_code"] == 3
    assert "unreachable" in unreachable.stderr and "Traceback" not in unreachable.stderr
    assert drconsole("node", "promote", nobody).returncode == 3
    node = node_process("n")
    assert drconsole("node", "fence", node.url).returncode == 4  # not confirmed
    assert drconsole("node", "fence", node.url, "--yes").returncode == 0
    status = drconsole("node", "status", node.url)
    assert status.returncode == 1 and "fenced" in status.stdout
    refused = httpx.put(f"{node.url}/kv/k", content=b"v")
    assert refused.status_code == 409
    remote = drconsole(
        "node",
        "serve",
        "--engine",
        "lsm",
        "--data-dir",
        str(tmp_path / "r"),
        "--port",
        str(free_port()),
        "--host",
        "0.0.0.0",
    )
    assert remote.returncode == 2 and "loopback" in remote.stderr
    assert not (tmp_path / "r").exists()
    token_file = tmp_path / "token"
    token_file.write_text("t0ken\n")
    guarded = node_process("g", "--token-file", str(token_file))
    assert drconsole("node", "promote", guarded.url).returncode == 4  # no token: refused
    assert drconsole("node", "promote", guarded.url, "--token-file", str(token_file)).returncode == 0
