"""The shipped demo triages healthy on every node: `drconsole triage --node ledger` -> recommended [], exit 0.

Its three primaries (orders, ledger, cache) are independent: never a split brain. Checked on the
demo's own config (data dirs and logs) with its nodes stopped and serving, and on the config the
demo console reads (each node's URL too).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from support import run_cli_in_process

from console.cli.main import main as cli_main
from console.config import load_config
from console.tui.demo import DemoFleet, available_backends, create_workspace
from fleet import NodeSpec
from playbooks.incidents import IncidentStore

pytestmark = pytest.mark.skipif(not available_backends(), reason="no backend built yet")


def triage_every_node(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    reports = {}
    for spec in load_config(config).nodes:
        result = run_cli_in_process(capsys, cli_main, "--config", config, "triage", "--node", spec.name, "--json")
        report = json.loads(result.out)
        trail = "\n".join(f"{row['node']}: {row['answer']} — {row['evidence']}" for row in report["path"])
        assert result.code == 0, f"{spec.name}: {report['summary']}\n{trail}"
        assert (report["recommended"], report["severity"], report["fault"], report["unknown"]) == ([], None, None, None)
        assert "split-brain" not in [row["node"] for row in report["path"]] or spec.name.startswith("orders")
        reports[spec.name] = report
    return reports


def test_the_demo_triages_healthy_on_every_node_stopped_and_serving(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRCONSOLE_STATE_DIR", str(tmp_path / "state"))
    workspace = tmp_path / "demo"
    config = create_workspace(workspace, keys=100)
    stopped = triage_every_node(config, capsys)
    ledger = {row["node"]: row for row in stopped["ledger"]["path"]}
    assert "ledger is not in a replication group" in ledger["in-group"]["evidence"]
    assert {row["node"] for row in stopped["orders"]["path"]} >= {"split-brain", "primary-down"}  # orders + standby

    fleet = DemoFleet(load_config(config).nodes, workspace / "logs").start()
    try:
        deadline = time.monotonic() + 90
        for url in fleet.urls.values():
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            else:
                pytest.fail(f"a demo node at {url} did not come up")
        time.sleep(1.0)  # the standby catches up with its primary
        triage_every_node(config, capsys)
        served = tmp_path / "served.toml"  # what the demo console reads: each node's URL too
        served.write_text("".join(node_table(spec) for spec in fleet.specs), encoding="utf-8")
        triage_every_node(served, capsys)
    finally:
        fleet.stop()
    assert IncidentStore().list() == []  # no fault: no incident opened


def node_table(spec: NodeSpec) -> str:
    fields = {
        "name": spec.name,
        "engine": spec.engine,
        "url": spec.url,
        "role": spec.role,
        "upstream": spec.upstream,
        "data_dir": spec.data_dir,
        "log_file": spec.log_file,
        "backup_repo": spec.backup_repo,
    }
    return (
        "[[node]]\n"
        + "".join(f"{key} = {json.dumps(str(value))}\n" for key, value in fields.items() if value is not None)
        + "\n"
    )
