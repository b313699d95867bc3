"""Pilot: a real serving lsm node with a damaged SSTable, polled over HTTP by the real console.

A read that meets the damage turns the node's card to ``✖ CORRUPT`` with the file and offset within
10 s; with no read at all, the scrub finds it and the dashboard tile says so within two scrub intervals.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
from integration.health.health_support import ServedNode, fill, flip_lsm_block

from console.tui.app import DrConsoleApp
from console.tui.widgets.fleet_tile import FleetTile
from console.tui.widgets.node_card import NodeCard
from fleet import HttpSource, NodeSpec


async def wait_for(pilot: Any, condition: Callable[[], bool], seconds: float, what: str) -> float:
    """Seconds until ``condition`` held (pausing the pilot so the app refreshes); fails naming ``what``."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():
            return time.monotonic() - started
        await pilot.pause(0.1)
    raise AssertionError(f"{what}: not within {seconds} s")


def card_text(app: DrConsoleApp, kind: type) -> str:
    widgets = list(app.screen.query(kind))
    return widgets[0].render_text() if widgets else ""


def test_a_failing_read_shows_corrupt_on_the_card_within_ten_seconds(served: Callable[..., ServedNode]) -> None:
    node = served("orders", "--scrub-interval", "0")
    fill(node.url, 500)
    app = DrConsoleApp(
        source=HttpSource([NodeSpec(name="orders", url=node.url, engine="lsm")], timeout_seconds=2.0),
        refresh_seconds=1.0,
    )

    async def main() -> tuple[float, str, Any]:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: "✔ OK" in card_text(app, NodeCard), 15, "the card showing OK")
            flipped = flip_lsm_block(node.data_dir)
            answer = await asyncio.to_thread(httpx.get, f"{node.url}/kv/{flipped.keys[0].decode()}")
            assert answer.status_code == 500
            took = await wait_for(
                pilot, lambda: "✖ CORRUPT" in card_text(app, NodeCard), 10, "the card showing CORRUPT"
            )
            return took, card_text(app, NodeCard), flipped

    took, card, flipped = asyncio.run(main())
    first = card.splitlines()[0]
    assert first.startswith(f"✖ CORRUPT {flipped.file} @{flipped.block_offset} · read"), card
    assert f"✖ CRIT data corruption in {flipped.file} at offset {flipped.block_offset}" in card
    assert took <= 10


def test_the_scrub_finds_it_with_no_reads_and_the_dashboard_tile_says_so(served: Callable[..., ServedNode]) -> None:
    interval = 2.0
    node = served("ledger", "--scrub-interval", str(interval))
    fill(node.url, 500)
    app = DrConsoleApp(
        source=HttpSource([NodeSpec(name="ledger", url=node.url, engine="lsm")], timeout_seconds=2.0),
        refresh_seconds=0.5,
        mode="dashboard",
    )

    async def main() -> tuple[float, str, str]:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: "✔" in card_text(app, FleetTile), 15, "the tile showing OK")
            flipped = flip_lsm_block(node.data_dir)
            took = await wait_for(
                pilot,
                lambda: flipped.file in card_text(app, FleetTile),
                2 * interval + 1.5,
                "the tile showing the damaged file",
            )
            return took, card_text(app, FleetTile), flipped.file

    took, tile, file = asyncio.run(main())
    # The wall tile draws its status as one big word (block letters) with the state's symbol beside
    # it, then the damaged file and offset.
    big_word = tile.splitlines()[:3]
    assert any(row.lstrip().startswith("✖") for row in big_word) and f"{file} @" in tile
    assert took <= 2 * interval + 1.5
    assert node.health()["corruption"]["found_by"] == "scrub"
