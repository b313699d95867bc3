"""Remote for real: the responder and the node on two "hosts" (network namespaces) joined by a veth cable.

The node serves its data dir on its own address inside its namespace; the responder's CLI, in
the other namespace, has a config with only the node's ``url`` and ``token_file`` (no data dir,
and no loopback path to the node). The node's data is corrupted while it serves (a fault injected
on its host), then triaged and recovered from the responder's host: every key is served again,
and nothing was deleted (the damaged table is in quarantine).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from agent_kit import DRCONSOLE, TOKEN, AgentNode, audit_entries, cli, free_port, write_config, write_token
from netns_kit import NetnsUnavailable, in_host, two_hosts

COUNT = 300


@pytest.fixture
def hosts():
    try:
        with two_hosts() as pair:
            yield pair
    except NetnsUnavailable as exc:
        pytest.skip(f"no network namespaces here: {exc}")


def test_corrupt_node_recovered_from_another_host(tmp_path: Path, hosts) -> None:
    token_file = write_token(tmp_path / "node.token")
    port = free_port()
    node = AgentNode(
        tmp_path / "orders",
        tmp_path / "node-host-state",
        token_file=token_file,
        host=hosts.node_ip,
        port=port,
        prefix=hosts.prefix(hosts.node),
    )
    node.start(probe=lambda: in_host(hosts, hosts.console, "up", node.url)["up"])
    try:
        # Across the cable, and not through loopback: the responder's 127.0.0.1 has no node.
        assert in_host(hosts, hosts.console, "up", f"http://127.0.0.1:{port}")["up"] is False
        in_host(hosts, hosts.console, "fill", node.url, str(COUNT), TOKEN)
        injected = subprocess.run(
            [
                *hosts.prefix(hosts.node),
                DRCONSOLE,
                "fault",
                "inject",
                "sstable-corrupt",
                "--data-dir",
                str(node.data_dir),
                "--seed",
                "11",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )  # on the node's host
        assert injected.returncode == 0, injected.stderr
        damaged = node.data_dir / json.loads(injected.stdout)["changes"][0]["file"]
        damaged_bytes = damaged.read_bytes()
        broken = in_host(hosts, hosts.console, "check", node.url, str(COUNT))
        assert broken["missing"], "the flipped bytes must hurt some reads"

        laptop = tmp_path / "laptop-state"
        config = write_config(tmp_path / "drconsole.toml", "orders", node.url, token_file)
        prefix = hosts.prefix(hosts.console)
        triage = cli(laptop, "--config", config, "triage", "--node", "orders", "--json", prefix=prefix)
        assert triage.code == 1, triage.err  # the node reports its corruption across the network
        assert triage.json()["recommended"][0] == "data-recovery"
        run = cli(
            laptop,
            "--config",
            config,
            "playbook",
            "run",
            "data-recovery",
            "--node",
            "orders",
            "--yes",
            "--json",
            prefix=prefix,
        )
        assert run.code == 0, run.err
        result = run.json()
        assert result["status"] == "succeeded" and result["verified_ready_at"]
        assert result["node_url"] == node.url

        after = in_host(hosts, hosts.console, "check", node.url, str(COUNT))
        assert after["missing"] == [] and after["codes"] == {"200": COUNT}
        health = in_host(hosts, hosts.console, "health", node.url)
        assert health["status_code"] == 200 and health["body"]["status"] == "healthy"
        assert any(path.read_bytes() == damaged_bytes for path in (node.data_dir / ".quarantine").rglob(damaged.name))
        # The node wrote down where the responder acted from: the other host's address.
        node_audit = [entry for entry in audit_entries(node.state) if entry.get("run_id") == result["run_id"]]
        assert node_audit and all(hosts.console_ip in entry["who"]["via"] for entry in node_audit)
    finally:
        node.stop()
