"""One incident, seen through the console and through the CLI: the same id, severity and events.

The console is opened on a real local fleet (data dirs, the playbooks' tree and runner): a healthy
node triaged with ``2`` opens nothing; a node with a real corrupt SSTable triaged to its leaf opens
the incident, with the diagnosis' severity, and ``drconsole incident list --json`` shows that very
incident. A node served by a real process that was killed: after the run's checks pass, the
console's refresh loop resolves the incident when the restarted node answers ``/ready``, not before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_testkit import screen_text
from integration.served_node import ServedNode
from support import available_backends, run_cli_in_process
from test_real_playbooks import corrupt_node, wait_for

from console.cli.main import main as cli_main
from console.config import load_config
from console.tui.app import DrConsoleApp
from console.tui.launch import build_app
from console.tui.screens.triage import TriageScreen
from engines import create_engine
from playbooks.incident_store import IncidentStore
from playbooks.runner import Runner, RunOptions

pytestmark = pytest.mark.skipif("lsm" not in available_backends(), reason="the lsm backend is not built")


def fleet_config(tmp_path: Path, node: str) -> Path:
    """One node: ``orders`` with a corrupt SSTable, or ``ledger`` healthy; thresholds no test volume reaches."""
    if node == "orders":
        corrupt_node(tmp_path, "lsm", name="orders")
    else:
        with create_engine(tmp_path / "nodes" / node, backend="lsm") as engine:
            for index in range(50):
                engine.put(f"entry:{index}".encode(), b"ok")
    path = tmp_path / "drconsole.toml"
    path.write_text(
        "[console]\nrefresh_seconds = 0.5\n\n[thresholds]\ndisk_usage = 0.999\nmemory_usage = 0.999\n\n"
        f'[[node]]\nname = "{node}"\nengine = "lsm"\ndata_dir = "nodes/{node}"\n'
    )
    return path


async def walk_to_the_leaf(app: DrConsoleApp, pilot, node: str) -> None:  # type: ignore[no-untyped-def]
    """Select ``node``, open Triage (2), and accept each probe's answer (``n`` where it cannot tell)."""
    app.selected_node = node
    await pilot.press("2")
    await wait_for(pilot, lambda: node in app.triage_sessions and isinstance(app.screen, TriageScreen))
    view = app.triage_sessions[node]
    while not view.current().is_leaf:
        await wait_for(pilot, lambda: view.probed(view.current().id) is not None)
        probe = view.probed(view.current().id)
        await pilot.press("a" if probe is not None and probe.answer is not None else "n")
    app.desk.flush(10)
    await pilot.pause(0.2)


def test_healthy_triage_opens_no_incident_in_the_console_or_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = fleet_config(tmp_path, "ledger")
    app = build_app(mode="interactive", theme=None, read_only=False, config=load_config(config), watch_terminal=False)

    async def main() -> tuple[bool, str]:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.nodes)
            await walk_to_the_leaf(app, pilot, "ledger")
            await pilot.press("4")
            await pilot.pause(0.2)
            return not app.triage_sessions["ledger"].current().recommend, screen_text(app)

    healthy_leaf, timeline_text = asyncio.run(main())
    assert healthy_leaf and app.incidents == {} and app.incident is None  # Triage (2) to its leaf: no incident
    assert "no incident open" in timeline_text and " RTO " not in timeline_text.splitlines()[0]
    triaged = run_cli_in_process(capsys, cli_main, "--config", config, "triage", "--node", "ledger", "--json")
    assert triaged.code == 0 and triaged.json()["recommended"] == [] and "incident" not in triaged.json()
    assert run_cli_in_process(capsys, cli_main, "incident", "list", "--json").json()["incidents"] == []


def test_the_console_and_the_cli_show_the_same_incident(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = fleet_config(tmp_path, "orders")
    app = build_app(mode="interactive", theme=None, read_only=False, config=load_config(config), watch_terminal=False)

    async def main() -> tuple[str, str]:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.nodes)
            await walk_to_the_leaf(app, pilot, "orders")
            await wait_for(pilot, lambda: app.incident is not None, 10)
            triage_text = screen_text(app)
            await pilot.press("4")
            await pilot.pause(0.2)
            return triage_text, screen_text(app)

    triage_text, timeline_text = asyncio.run(main())
    incident = app.incident
    assert incident is not None and incident.target == "orders" and incident.severity == "P0"
    assert incident.rto_basis == "playbook data-recovery" and incident.target_rto_seconds == 7200
    # The header (status bar) and the Timeline show the id and the severity.
    assert f"P0 {incident.id} RTO" in triage_text
    assert f"{incident.id} · P0 · open" in timeline_text

    listed = run_cli_in_process(capsys, cli_main, "incident", "list", "--json").json()["incidents"]
    assert [(row["id"], row["severity"], row["target"], row["status"]) for row in listed] == [
        (incident.id, "P0", "orders", "open")
    ]
    shown = run_cli_in_process(capsys, cli_main, "incident", "show", incident.id, "--json").json()
    assert [row["type"] for row in shown["timeline"]] == [event.kind for event in incident.events]
    assert shown["target_rto_seconds"] == incident.target_rto_seconds


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedNode]:
    node = ServedNode(tmp_path / "nodes" / "orders")
    try:
        yield node
    finally:
        node.stop()


def test_the_refresh_loop_resolves_when_the_node_answers_ready_after_the_run(
    tmp_path: Path, served: ServedNode
) -> None:
    served.start()
    served.write(30)
    config = tmp_path / "drconsole.toml"
    config.write_text(
        f'[console]\nrefresh_seconds = 0.2\n\n[[node]]\nname = "orders"\nengine = "lsm"\n'
        f'url = "{served.url}"\ndata_dir = "nodes/orders"\n'
    )
    app = build_app(mode="interactive", theme=None, read_only=False, config=load_config(config), watch_terminal=False)
    assert app.node_urls == {"orders": served.url}

    async def main() -> dict[str, float | str]:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(
                pilot,
                lambda: (
                    app.snapshot is not None
                    and app.snapshot.node("orders") is not None
                    and app.snapshot.node("orders").reachable
                ),
            )
            served.kill()
            await wait_for(pilot, lambda: not app.snapshot.node("orders").reachable, 20)
            # The process-crash playbook on the data dir nobody serves now (as the console's launcher runs it).
            result = await asyncio.to_thread(
                Runner().run,
                "process-crash",
                served.data_dir,
                RunOptions(assume_yes=True, node="orders", ready_url=served.url),
            )
            run_ended = time.time()
            assert result.status == "succeeded" and result.incident is not None
            await pilot.pause(1.5)  # ticks while the node is down: the incident stays open
            app.desk.flush(10)
            await pilot.pause(0.1)
            waiting = app.incident
            assert waiting is not None and waiting.status == "open" and waiting.awaiting_verification
            ready_at = await asyncio.to_thread(served.start)
            await wait_for(pilot, lambda: app.incident is not None and app.incident.status == "resolved", 30)
            return {"run_ended": run_ended, "ready_at": ready_at, "bar": screen_text(app).splitlines()[0]}

    seen = asyncio.run(main())
    resolved = IncidentStore().load(app.incident.id)  # type: ignore[union-attr]
    assert resolved.status == "resolved" and resolved.resolved_at is not None
    assert resolved.resolved_at >= float(seen["ready_at"]) - 1.0  # timed at /ready's 200 (one tick at most)
    assert resolved.resolved_at > float(seen["run_ended"]) + 1.5  # not when the run's last step ended
    assert "/ready answered 200" in resolved.resolution
    assert "✔ restored" in str(seen["bar"]) and resolved.id in str(seen["bar"])
    assert served.serves(30)


def test_an_incident_on_a_data_dir_outside_the_fleet_is_counted_not_headlined(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The state dir is the user's, not the fleet's: a CLI triage of some other corrupt data dir opened
    a P0 there. The console on a healthy fleet says so ("+1 open elsewhere") and does not wear it as its
    own P0 clock; once its own node has an incident, that one is the headline."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    corrupt_node(elsewhere, "lsm", name="scratch")
    foreign = run_cli_in_process(
        capsys, cli_main, "triage", "--data-dir", elsewhere / "nodes" / "scratch", "--json"
    ).json()
    assert foreign["severity"] == "P0" and foreign["incident"]
    config = fleet_config(tmp_path, "ledger")
    app = build_app(mode="interactive", theme=None, read_only=False, config=load_config(config), watch_terminal=False)

    async def main() -> tuple[str, str]:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.nodes and app.incidents)
            await pilot.pause(0.2)
            before = screen_text(app).splitlines()[0]
            IncidentStore().open(
                "ledger", severity="P2", title="Ledger lagging", target_rto_seconds=3600, rto_basis="test"
            )
            app.desk.refresh()
            app.desk.flush(10)
            await wait_for(pilot, lambda: app.incident is not None)
            await pilot.pause(0.2)
            return before, screen_text(app).splitlines()[0]

    before, after = asyncio.run(main())
    assert "+1 open elsewhere" in before and " RTO " not in before and "P0" not in before
    assert app.incident is not None and app.incident.target == "ledger"
    assert "P2" in after and " RTO " in after and "+1 open elsewhere" in after
