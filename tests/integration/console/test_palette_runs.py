"""Any playbook from the palette: "Run playbook…" lists the library with a filter, the Run screen shows
the dry-run plan before anything starts, and the run goes the way a recommended one does (the node's
name typed at the confirmation, the runner's journal and the hash-chained audit log).

Real fleet: an lsm data dir with a flipped SSTable byte (orders) and a healthy cow data dir (ledger),
read locally; the playbook is picked by keys in the palette, not by calling the app's methods.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from console_testkit import screen_text, tree_digest
from support import available_backends
from test_real_playbooks import wait_for
from textual.command import CommandPalette
from textual.widgets import Input, OptionList

from console.config import load_config
from console.tui.launch import build_app
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.playbook_picker import PlaybookPicker
from console.tui.screens.run import RunScreen
from engines import create_engine
from engines.checks import verify_data_dir
from faults import inject
from playbooks.audit import AuditLog
from playbooks.journal import read_journal
from playbooks.state import StateDir

pytestmark = pytest.mark.skipif(not {"lsm", "cow"} <= set(available_backends()), reason="lsm and cow backends needed")


def two_node_fleet(tmp_path: Path) -> tuple[Path, Path, Path]:
    orders, ledger = tmp_path / "nodes" / "orders", tmp_path / "nodes" / "ledger"
    for path, backend in ((orders, "lsm"), (ledger, "cow")):
        with create_engine(path, backend=backend) as engine:
            for index in range(300):
                engine.put(f"order:{index:05d}".encode(), b"paid" * 20)
    inject("sstable-corrupt", orders, seed=7)
    assert not verify_data_dir(orders).ok
    config = tmp_path / "drconsole.toml"
    config.write_text(
        '[[node]]\nname = "orders"\nengine = "lsm"\ndata_dir = "nodes/orders"\n\n'
        '[[node]]\nname = "ledger"\nengine = "cow"\ndata_dir = "nodes/ledger"\n'
    )
    return config, orders, ledger


async def open_picker(pilot, app) -> None:  # type: ignore[no-untyped-def]
    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
    await pilot.press(*"Run playbook")
    await pilot.pause(0.3)
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, PlaybookPicker) and bool(app.screen.choices))


def options(app) -> list[str]:  # type: ignore[no-untyped-def]
    found = app.screen.query_one(OptionList)
    return [str(found.get_option_at_index(index).prompt) for index in range(found.option_count)]


def test_a_playbook_picked_in_the_palette_shows_its_plan_then_runs_confirmed_journaled_audited(tmp_path: Path) -> None:
    config, orders, ledger = two_node_fleet(tmp_path)
    ledger_before = tree_digest(ledger)
    app = build_app(mode="interactive", theme=None, read_only=False, config=load_config(config), watch_terminal=False)

    async def main() -> dict[str, object]:
        seen: dict[str, object] = {}
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await open_picker(pilot, app)
            seen["library"] = len(options(app))
            await pilot.press(*"recover lsm")  # every word must match
            await pilot.pause(0.1)
            seen["filtered"] = options(app)
            await pilot.press("enter")  # recover-lsm fits one node only (orders): no node step
            await wait_for(
                pilot,
                lambda: (
                    isinstance(app.screen, RunScreen)
                    and app.run_state is not None
                    and any("(dry run: nothing was changed)" in entry.text for entry in app.run_state.log)
                ),
            )
            await pilot.pause(0.2)
            seen["plan_screen"] = screen_text(app)
            seen["started_before_s"] = app.run_state.started
            seen["journals_before_s"] = sorted(StateDir().runs.glob("*")) if StateDir().runs.exists() else []
            await pilot.press("s")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press(*"orders")
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.run_state.done, 120)
            await pilot.pause(0.2)
            seen["run_screen"] = screen_text(app)
        return seen

    seen = asyncio.run(asyncio.wait_for(main(), 180))
    assert isinstance(seen["library"], int) and seen["library"] >= 30  # the whole library, before a filter
    filtered = seen["filtered"]
    # Every word matches somewhere (lsm: every playbook that runs on lsm); the one named by both comes first.
    assert isinstance(filtered, list) and filtered[0].startswith("recover-lsm ")
    assert not any(option.startswith(("recover-cow", "backup-full", "restore ")) for option in filtered)
    plan_screen = str(seen["plan_screen"])
    assert "recover-lsm on orders" in plan_screen and "press s to start" in plan_screen
    assert "⚠ destructive" in plan_screen  # the plan's destructive steps, on screen before s
    state = app.run_state
    assert state is not None
    assert any(e.text.startswith(" 3. repair:") and "destructive: asks for the node name" in e.text for e in state.log)
    assert f"plan of recover-lsm on {orders} (dry run: nothing was changed):" in [e.text for e in state.log]
    assert seen["started_before_s"] is False and seen["journals_before_s"] == []  # a plan, nothing run
    assert state.playbook_id == "recover-lsm" and state.node == "orders"
    result = state.result
    assert result is not None and result.status == "succeeded", (state.error, [e.text for e in state.log[-8:]])
    assert verify_data_dir(orders).ok
    assert list((orders / ".quarantine").rglob("*"))  # the damaged table kept, not deleted
    assert tree_digest(ledger) == ledger_before  # the other node was never touched
    journal = read_journal(Path(result.journal or ""))
    assert journal.header["playbook"] == "recover-lsm"
    assert [record["message"] for record in journal.logs] == [e.text for e in state.log if e.source == "log"]
    audit = AuditLog(StateDir().audit_log)
    assert audit.verify().ok
    entries = list(audit.entries())
    assert entries and any(str(orders) in str(entry.get("target", "")) for entry in entries)
    # The choice is in the console's event log; the run is on an incident, as a recommended one is.
    assert any(event.kind == "playbook_chosen" and "recover-lsm" in event.message for event in app.events)
    assert result.incident, "the run recorded no incident"
    assert any(event.kind == "run_finished" for event in app.timeline())


def test_the_node_step_lists_every_node_and_refuses_one_the_playbook_is_not_for(tmp_path: Path) -> None:
    config, _orders, _ledger = two_node_fleet(tmp_path)
    app = build_app(mode="interactive", theme=None, read_only=False, config=load_config(config), watch_terminal=False)

    async def main() -> tuple[list[str], list[str], list[str], object]:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await open_picker(pilot, app)
            await pilot.press(*"recover cow")
            await pilot.pause(0.1)
            not_for_orders = options(app)
            app.screen.query_one(Input).value = "backup verify"
            await pilot.pause(0.1)
            await pilot.press("enter")  # backup-verify fits both nodes: the node step
            await pilot.pause(0.1)
            nodes = options(app)
            await pilot.press(*"ledger")
            await pilot.pause(0.1)
            filtered_nodes = options(app)
            await pilot.press("escape")  # at the node step, escape goes back to the playbooks
            await pilot.pause(0.1)
            back = isinstance(app.screen, PlaybookPicker) and app.screen.picked is None
            await pilot.press(*"backup verify")
            await pilot.press("enter")
            await pilot.press(*"ledger")
            await pilot.pause(0.1)
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, RunScreen) and app.run_state is not None)
            assert back
            return not_for_orders, nodes, filtered_nodes, app.run_state

    not_for_orders, nodes, filtered_nodes, state = asyncio.run(asyncio.wait_for(main(), 120))
    selected = app.selected_node
    assert any(option.startswith("recover-cow") for option in not_for_orders)
    if selected == "orders":
        assert "(not for lsm)" in not_for_orders[0]
    assert sorted(option.split(" ")[0] for option in nodes) == ["ledger", "orders"]
    assert filtered_nodes == ["ledger · cow"]
    assert state is not None and state.playbook_id == "backup-verify" and state.node == "ledger"
    assert not state.started  # shown with its plan; only s starts it


def test_read_only_offers_no_playbook_to_run(tmp_path: Path) -> None:
    config, orders, _ledger = two_node_fleet(tmp_path)
    before = tree_digest(orders)
    app = build_app(mode="interactive", theme=None, read_only=True, config=load_config(config), watch_terminal=False)

    async def main() -> tuple[list[str], type]:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            titles = [command.title for command in app.get_system_commands(app.screen)]
            app.action_pick_playbook()  # as if asked some other way: refused
            await pilot.pause(0.2)
            return titles, type(app.screen)

    titles, screen = asyncio.run(asyncio.wait_for(main(), 60))
    assert "Run playbook…" not in titles
    assert screen is not PlaybookPicker
    assert tree_digest(orders) == before
