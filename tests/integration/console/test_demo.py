"""The demo workspace: a real local fleet, read by LocalSource, shown by the console."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from console_testkit import screen_text

from console.config import load_config
from console.tui.demo import DEMO_MARKER, DemoLoad, available_backends, create_workspace
from console.tui.launch import build_app
from engines import create_engine, open_engine
from engines.errors import InvalidArgumentError

pytestmark = pytest.mark.skipif(not available_backends(), reason="no backend built yet")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "ws"
    create_workspace(path, keys=50)
    return path


def test_the_workspace_is_one_node_per_backend_and_a_standby(workspace: Path) -> None:
    config = load_config(workspace / "drconsole.toml")
    names = [node.name for node in config.nodes]
    backends = available_backends()
    assert len(names) == len(backends) + 1 and names[-1] == f"{names[0]}-standby"
    assert [node.engine for node in config.nodes] == [*backends, backends[0]]
    assert config.nodes[-1].role == "standby" and config.nodes[-1].upstream == names[0]
    assert (workspace / DEMO_MARKER).is_file()
    for node in config.nodes:
        with open_engine(node.data_dir, mode="ro") as engine:
            assert engine.stats().total_keys >= 50
    assert create_workspace(workspace) == workspace / "drconsole.toml"  # reused, not rebuilt


def test_a_directory_that_is_not_a_demo_is_refused(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("user data")
    with pytest.raises(InvalidArgumentError, match="not empty and is not a drconsole demo workspace"):
        create_workspace(tmp_path)
    assert [path.name for path in tmp_path.iterdir()] == ["precious.txt"]


def test_the_overview_shows_the_demo_fleet_and_says_where_nodes_come_from(workspace: Path) -> None:
    config = load_config(workspace / "drconsole.toml")
    app = build_app(
        mode="interactive",
        theme=None,
        read_only=False,
        config=config,
        watch_terminal=False,
        notice=f"demo workspace {workspace}: node processes come with the node issue",
    )

    async def main() -> str:
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(200):
                if app.snapshot is not None:
                    break
                await pilot.pause(0.02)
            await pilot.pause(0.2)
            return screen_text(app)

    text = asyncio.run(main())
    standby = app.snapshot.node(config.nodes[-1].name)
    assert standby is not None and standby.replication.lag_records == 60
    for node in config.nodes:
        assert node.name in text
    assert "node processes come with the node issue" in text
    assert "data dir opens read-only" in text


def test_the_light_load_writes_and_lets_go(tmp_path: Path) -> None:
    data = tmp_path / "n"
    create_engine(data, backend=available_backends()[0]).close()
    before = 0
    load = DemoLoad([data], interval_seconds=0.02).start()
    time.sleep(0.3)
    load.stop()
    assert load.error is None
    with open_engine(data, mode="rw") as engine:  # the lock was released
        assert engine.last_lsn > before


def test_the_demo_keeps_its_incidents_in_its_workspace_and_the_cli_on_its_config_sees_them(tmp_path: Path) -> None:
    """A real ``drconsole`` process with no DRCONSOLE_STATE_DIR (a user's shell): a triage on the demo's
    config records in <workspace>/state, ``incident list`` on that config shows it, and the user's own
    state dir (~/.local/state under HOME) neither gets it nor lends the demo its incidents."""
    import json
    import os
    import subprocess
    import sys

    from faults import inject

    workspace = tmp_path / "ws"
    create_workspace(workspace, keys=50)  # its own: the module's workspace stays sound for the others
    home = tmp_path / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DRCONSOLE_", "XDG_"))}
    env |= {"HOME": str(home), "DRCONSOLE_AUDIT_SYSLOG": str(tmp_path / "no-syslog.sock")}
    config = load_config(workspace / "drconsole.toml")
    target = next(node for node in config.nodes if node.engine == "lsm" and node.role == "primary")
    inject("sstable-corrupt", Path(target.data_dir), seed=5)

    def drconsole(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "console.cli", *args], env=env, capture_output=True, text=True, timeout=120
        )

    triaged = drconsole("--config", str(workspace / "drconsole.toml"), "triage", "--node", target.name, "--json")
    assert triaged.returncode == 1, triaged.stderr
    opened = json.loads(triaged.stdout)["incident"]
    assert (workspace / "state" / "incidents" / f"{opened}.jsonl").is_file()
    listed = drconsole("--config", str(workspace / "drconsole.toml"), "incident", "list", "--json")
    assert [row["id"] for row in json.loads(listed.stdout)["incidents"]] == [opened]
    # The user's own state: untouched, and a plain `incident list` there does not show the demo's.
    assert not (home / ".local" / "state" / "drconsole" / "incidents").exists()
    assert json.loads(drconsole("incident", "list", "--json").stdout)["incidents"] == []


def test_the_standby_shares_no_file_with_its_primary(workspace: Path) -> None:
    """A checkpoint hard-links tables; a real standby shares no block with its primary, so a byte
    flipped in the primary's table must leave the standby's copy as it was."""
    config = load_config(workspace / "drconsole.toml")
    primary, standby = config.nodes[0], config.nodes[-1]
    shared = {path.stat().st_ino for path in Path(primary.data_dir).rglob("*") if path.is_file()} & {
        path.stat().st_ino for path in Path(standby.data_dir).rglob("*") if path.is_file()
    }
    assert shared == set()
    assert all(path.stat().st_nlink == 1 for path in Path(standby.data_dir).rglob("*") if path.is_file())
