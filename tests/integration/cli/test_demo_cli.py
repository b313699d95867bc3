"""Consoles and CLI commands given the demo's config while the demo runs see and act on its nodes as on a real fleet's.

The demo's drconsole.toml has no node URLs (the ports change at every start). Before, a playbook
run with ``--node orders`` went to the local files and was refused: the running node holds the data
dir. The running demo now lists its node processes beside its config, and ``--node`` finds the URL
there, for as long as that very process serves. A second console, ``status`` and the web dashboard
given that config read the nodes the same way (console.config.load_config): before, they read the
locked data dirs read-only, without the nodes' metrics or replication.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from console.config import load_config
from console.config_lookup import DEMO_NODES, demo_node_urls
from console.tui.demo import DemoFleet, available_backends, create_workspace
from console.tui.launch import build_app

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif("lsm" not in available_backends(), reason="the demo's orders node is lsm")


def _drconsole(*args: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _wait_up(urls: list[str]) -> None:
    deadline = time.monotonic() + 90
    for url in urls:
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"the demo node at {url} did not come up"
            time.sleep(0.1)


def test_a_playbook_given_the_demo_config_runs_on_the_running_node(tmp_path: Path) -> None:
    workspace = tmp_path / "demo"
    config = create_workspace(workspace, keys=100)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DRCONSOLE_STATE_DIR", None)  # the demo's own state dir, as a user gets it
    repo = workspace / "backups" / "orders"
    before = set(repo.glob("*/backup_*/*.metadata.json"))
    fleet = DemoFleet(load_config(config).nodes, workspace / "logs").start()
    try:
        _wait_up(list(fleet.urls.values()))
        assert demo_node_urls(workspace) == fleet.urls
        ran = _drconsole(
            "--config", config, "playbook", "run", "backup-full", "--node", "orders", "--yes", "--json", env=env
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
        result = json.loads(ran.stdout)
        assert result["status"] == "succeeded", result
        made = set(repo.glob("*/backup_*/*.metadata.json")) - before
        assert len(made) == 1, made  # taken by the node itself, through its agent: its data dir stayed locked
        assert fleet.processes["orders"].poll() is None  # and it kept serving
    finally:
        fleet.stop()
    assert not (workspace / DEMO_NODES).exists()
    assert demo_node_urls(workspace) == {}


def test_a_stale_listing_names_no_node(tmp_path: Path) -> None:
    workspace = tmp_path / "demo"
    create_workspace(workspace, keys=10)
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    listing = {
        "orders": {"url": "http://127.0.0.1:9", "pid": finished.pid},  # the process is gone
        "ledger": {"url": "http://127.0.0.1:9", "pid": os.getpid()},  # alive, but not that node's `node serve`
        "cache": {"url": "http://127.0.0.1:9"},  # damaged
    }
    (workspace / DEMO_NODES).write_text(json.dumps(listing), encoding="utf-8")
    assert demo_node_urls(workspace) == {}
    (workspace / DEMO_NODES).write_text("{not json", encoding="utf-8")
    assert demo_node_urls(workspace) == {}
    plain = tmp_path / "plain"  # not a demo workspace: its listing, if any, is not read
    plain.mkdir()
    (plain / DEMO_NODES).write_text(json.dumps({"orders": {"url": "u", "pid": os.getpid()}}), encoding="utf-8")
    assert demo_node_urls(plain) == {}


def test_a_second_console_and_status_on_the_demo_config_see_the_running_nodes(tmp_path: Path) -> None:
    from integration.console.console_testkit import screen_text

    workspace = tmp_path / "demo"
    config_file = create_workspace(workspace, keys=100)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DRCONSOLE_STATE_DIR", None)
    assert load_config(config_file).console.source == "local"  # no demo running: the files, as before
    fleet = DemoFleet(load_config(config_file).nodes, workspace / "logs").start()
    try:
        _wait_up(list(fleet.urls.values()))
        config = load_config(config_file)
        assert {node.name: node.url for node in config.nodes} == fleet.urls
        assert config.console.source == "auto"

        status = _drconsole("--config", config_file, "status", "--json", env=env)
        assert status.returncode == 0, status.stdout + status.stderr
        rows = {row["name"]: row for row in json.loads(status.stdout)["nodes"]}
        assert {name: row["address"] for name, row in rows.items()} == fleet.urls
        assert all(row["reachable"] and row["health_reason"].startswith("healthy, up") for row in rows.values()), rows

        app = build_app(mode="interactive", theme=None, read_only=True, config=config, watch_terminal=False)

        async def main() -> str:
            async with app.run_test(size=(160, 50)) as pilot:
                for _ in range(400):
                    if app.snapshot is not None and app.snapshot.node("orders-standby") is not None:
                        break
                    await pilot.pause(0.05)
                await pilot.pause(0.3)
                return screen_text(app)

        text = asyncio.run(main())
        assert fleet.urls["orders"] in text
        assert "serves orders-standby" in text  # the primary's replication, which only the node knows
        assert "data dir opens read-only" not in text
        assert all(process.poll() is None for process in fleet.processes.values())
    finally:
        fleet.stop()
    after = load_config(config_file)
    assert all(node.url is None for node in after.nodes) and after.console.source == "local"
