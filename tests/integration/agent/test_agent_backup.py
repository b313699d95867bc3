"""Backups of live nodes go through the node: the shipped backup timer works on every serving node.

The node is started with ``drconsole-node@.service``'s own command line, the backup with
``drconsole-backup@.service``'s ExecStart lines, their paths moved under a temp dir.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from agent_kit import DRCONSOLE, ROOT, AgentNode, base_env, cli, fill, free_port, missing_keys, write_token

UNITS = ROOT / "deploy" / "systemd"
SHIPPED = "/opt/drconsole/.venv/bin/drconsole"


def _exec_lines(unit: str, instance: str, root: Path) -> list[list[str]]:
    """The unit's ExecStart command lines for ``instance``, its paths moved under ``root``."""
    text = (UNITS / unit).read_text(encoding="utf-8").replace("\\\n", " ")
    lines = []
    for line in text.splitlines():
        if not line.startswith("ExecStart="):
            continue
        command = line.removeprefix("ExecStart=").replace("%i", instance).replace(SHIPPED, DRCONSOLE)
        for prefix in ("/var/lib/drconsole", "/var/backups/drconsole", "/etc/drconsole"):
            command = command.replace(prefix, str(root / prefix.strip("/")))
        lines.append(shlex.split(command))
    return lines


def test_the_backup_units_exec_lines_back_up_a_live_node(tmp_path: Path) -> None:
    root = tmp_path / "host"
    (root / "etc" / "drconsole").mkdir(parents=True)
    (root / "var" / "lib" / "drconsole").mkdir(parents=True)
    token_file = write_token(root / "etc" / "drconsole" / "node-orders.token")
    port = free_port()
    [node_command] = _exec_lines("drconsole-node@.service", "orders", root)
    node_command = [part for part in node_command if part != "$DRCONSOLE_NODE_ARGS"] + [
        "--engine",
        "lsm",
        "--port",
        str(port),
        "--scrub-interval",
        "0",
    ]
    node = AgentNode(
        root / "var" / "lib" / "drconsole" / "orders",
        root / "var" / "lib" / "drconsole" / ".state" / "orders",
        token_file=token_file,
        port=port,
    )
    node.args = node_command
    node.start()
    try:
        ledger = fill(node, 120)
        marker = json.loads((node.data_dir / "node-agent.json").read_text())
        assert marker["url"] == node.url and marker["token_file"] == str(token_file)
        assert token_file.read_text().strip() not in (node.data_dir / "node-agent.json").read_text()

        for command in _exec_lines("drconsole-backup@.service", "orders", root):
            done = subprocess.run(
                command, cwd=ROOT, env=base_env(tmp_path / "timer-state"), capture_output=True, text=True, timeout=300
            )
            assert done.returncode == 0, f"{command}: {done.stderr}"
            if "create" in command:
                created = json.loads(done.stdout)
                assert created["through_node"]["url"] == node.url
                assert created["backup_id"] and created["type"] == "full"
        # The node went on serving (a hot backup: no drain), and the backup restores every key.
        assert missing_keys(node.url, ledger) == []
        repo = root / "var" / "backups" / "drconsole" / "orders"
        assert cli(tmp_path / "timer-state", "backup", "verify", "--repo", repo).code == 0
        restored = tmp_path / "restored"
        assert cli(tmp_path / "timer-state", "backup", "restore", "--repo", repo, "--data-dir", restored).code == 0
        for key, value in list(ledger.items())[::17]:
            got = cli(tmp_path / "timer-state", "engine", "get", "--data-dir", restored, key.decode())
            assert got.code == 0 and got.out.strip().encode() == value, key
    finally:
        node.stop()
    assert not (node.data_dir / "node-agent.json").exists(), "a clean stop removes the marker"
    # A data dir nobody serves is backed up directly, as before.
    offline = cli(
        tmp_path / "timer-state",
        "backup",
        "create",
        "--data-dir",
        node.data_dir,
        "--repo",
        tmp_path / "offline-repo",
        "--json",
    )
    assert offline.code == 0 and "through_node" not in offline.json()
