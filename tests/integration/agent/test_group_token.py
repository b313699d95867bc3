"""A group whose nodes check their admin token, failed over from a responder's shell.

The failover playbook fences and promotes the group's nodes by URL: its node actions name no token.
The responder's config books each ``[[node]]``'s ``token_file`` for its URL, so the promotion
carries the token; a node run books its own token for its upstream and peers. Without the book the
standby answered 401 and the failover stopped at "promote" with the primary already dead.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from agent_kit import AgentNode, cli, fill, missing_keys, wait_until


def test_failover_of_a_token_checking_pair_from_the_cli(tmp_path: Path, agent_node, token_file: Path) -> None:
    primary: AgentNode = agent_node("orders-a", engine="lsm")
    standby: AgentNode = agent_node("orders-b", engine="lsm", extra=["--follow", primary.url, "--peer", primary.url])
    ledger = fill(primary, 200)
    wait_until(
        lambda: (
            httpx.get(f"{standby.url}/replication", timeout=5).json().get("applied_lsn")
            == httpx.get(f"{primary.url}/health", timeout=5).json()["last_lsn"]
        ),
        timeout=30,
    )
    # The admin API refuses a call without the token: the test means something.
    assert httpx.post(f"{standby.url}/admin/promote", json={}, timeout=5).status_code == 401
    primary.kill()

    config = tmp_path / "drconsole.toml"
    config.write_text(
        f'[[node]]\nname = "orders-a"\nengine = "lsm"\nurl = "{primary.url}"\ntoken_file = "{token_file}"\n'
        f'\n[[node]]\nname = "orders-b"\nengine = "lsm"\nurl = "{standby.url}"\ntoken_file = "{token_file}"\n'
        f'upstream = "orders-a"\n'
    )
    run = cli(
        tmp_path / "laptop",
        "--config",
        config,
        "playbook",
        "run",
        "failover",
        "--data-dir",
        primary.data_dir,
        "--param",
        f"nodes={primary.url},{standby.url}",
        "--yes",
        "--json",
    )
    assert run.code == 0, run.err + run.out
    result = json.loads(run.out)
    steps = {step["id"]: step["status"] for step in result["steps"]}
    assert steps["promote"] == "succeeded", steps
    role = httpx.get(f"{standby.url}/health", timeout=5).json()
    assert role["role"] == "primary" and role["epoch"] >= 1
    assert missing_keys(standby.url, ledger) == []
    # The new primary takes writes.
    headers = {"Authorization": f"Bearer {token_file.read_text().strip()}"}
    assert httpx.put(f"{standby.url}/kv/after-failover", content=b"x", headers=headers, timeout=5).status_code in (
        200,
        201,
        204,
    )
