"""The Run screen on a serving node known only by url + token_file: the node recovers itself.

A real ``drconsole node serve`` process with its agent serves an lsm store whose SSTable gets
flipped bytes while it serves; the console's config holds only the node's ``url`` and
``token_file``. From the Run screen the responder starts data-recovery and types the node name; the
node drains, repairs, reopens and answers /ready, and the Run screen shows "verified: node ready
at" the node's own moment. Every key is served again over HTTP; the damaged table is in quarantine.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from console_testkit import screen_text
from support import available_backends
from textual.widgets import Input

from console.config import load_config
from console.tui.launch import build_app
from console.tui.screens.confirm import ConfirmScreen
from faults import inject

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))

from agent_kit import AgentNode, fill, missing_keys, write_config, write_token  # noqa: E402

pytestmark = pytest.mark.skipif("lsm" not in available_backends(), reason="the lsm backend is not built")


@pytest.fixture
def serving_node(tmp_path: Path) -> Iterator[Callable[..., AgentNode]]:
    started: list[AgentNode] = []

    def start(**kwargs: Any) -> AgentNode:
        node = AgentNode(tmp_path / "orders", tmp_path / "node-state", **kwargs).start()
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


async def wait_for(pilot, condition, seconds: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not met in time")


def test_a_corrupt_serving_node_recovered_from_the_run_screen(tmp_path: Path, serving_node) -> None:
    token_file = write_token(tmp_path / "orders.token")
    node: AgentNode = serving_node(token_file=token_file)
    ledger = fill(node, 400)
    report = inject("sstable-corrupt", node.data_dir, seed=7)
    damaged = node.data_dir / report.changes[0].file
    damaged_bytes = damaged.read_bytes()
    assert missing_keys(node.url, ledger), "the flipped bytes must hurt some reads"
    config = load_config(write_config(tmp_path / "drconsole.toml", "orders", node.url, token_file))
    assert config.nodes[0].data_dir is None
    app = build_app(mode="interactive", theme=None, read_only=False, config=config, watch_terminal=False)

    async def main() -> tuple[str, str]:
        async with app.run_test(size=(120, 40)) as pilot:
            app.choose("data-recovery", "orders")
            await wait_for(pilot, lambda: app.run_state.plan is not None or app.run_state.cannot)
            assert not app.run_state.cannot, app.run_state.cannot
            ready = screen_text(app)
            await pilot.press("s")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            app.screen.query_one(Input).value = "orders"
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.run_state.done)
            await pilot.pause(0.2)
            return ready, screen_text(app)

    ready, done = asyncio.run(main())
    state = app.run_state
    assert "○ READY" in ready and state.target == node.url
    result = state.result
    assert result is not None and result.status == "succeeded", (state.error, [e.text for e in state.log[-8:]])
    assert result.node_url == node.url and isinstance(result.verified_ready_at, float)
    assert state.verified is not None and state.status == "succeeded"
    assert state.verified.at == datetime.fromtimestamp(result.verified_ready_at, UTC)  # the node's own moment
    assert "✔ SUCCEEDED" in done and f"verified: node ready at {state.verified.at:%H:%M:%S} UTC" in done
    assert {step.id: step.status for step in result.steps}["recover-lsm/repair"] == "succeeded"
    assert state.statuses["recover-lsm/repair"] == "succeeded"
    assert any(entry.source == "log" for entry in state.log)
    # Serving again: every key with its value, over HTTP; the damaged table in quarantine, byte for byte.
    assert missing_keys(node.url, ledger) == []
    assert node.call("GET", "/ready").status_code == 200
    assert [path for path in (node.data_dir / ".quarantine").rglob(damaged.name) if path.read_bytes() == damaged_bytes]
    assert app.incident is not None and abs(app.incident.resolved_at - state.verified.at.timestamp()) < 1e-3
