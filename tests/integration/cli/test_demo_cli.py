"""CLI commands given the demo's config while the demo runs act on its nodes as on a real fleet's.

The demo's drconsole.toml has no node URLs (the ports change at every start). Before, a playbook
run with ``--node orders`` went to the local files and was refused: the running node holds the data
dir. The running demo now lists its node processes beside its config, and ``--node`` finds the URL
there, for as long as that very process serves.
"""

from __future__ import annotations

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
