"""The wall (``drconsole dashboard``): tiles that fill any screen, every node with its trend, the alerts
once, LAGGING for a standby behind, and a strip that never says all is well while nodes are down."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from console_testkit import fixture_app, fixture_ticks, screen_text

from console.format import fleet_tally, quiet_fleet_note, shown_health
from fleet import Health, NodeSnapshot, NodeSpec, Replication, Thresholds, finalize

BORDERS = set("│┃║╭╮╰╯┏┓┗┛╔╗╚╝━═─ ")


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 60))


def wall_text(size: tuple[int, int], ticks=None) -> str:  # type: ignore[no-untyped-def]
    async def main() -> str:
        app = fixture_app(mode="dashboard", ticks=ticks)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await pilot.pause()
            return screen_text(app)

    return run(main())


@pytest.mark.parametrize("size", [(120, 40), (200, 60)], ids=lambda size: f"{size[0]}x{size[1]}")
def test_the_wall_fills_the_screen_with_every_node_and_its_trend(size: tuple[int, int]) -> None:
    text = wall_text(size)
    rows = text.splitlines()
    blank = [row for row in rows if not set(row) - BORDERS]
    # "no empty half": at 200x60 the old layout left ~48 of 60 rows empty.
    assert len(blank) <= size[1] // 5, f"{len(blank)} empty rows of {size[1]}:\n{text}"
    for name in ("orders-a", "orders-b", "ledger", "cache"):
        assert name in text
    # Each reachable node's tile has its trend block; the alerts are said once.
    assert text.count("last 10 readings") == 3
    assert text.count("p95 write latency 147 ms") == 1
    assert "no active alerts" not in text
    assert "LAGGING" in text and "lag 14s" in text  # orders-b, 14.6 s behind
    assert "120G/200G" in text and "full in ~33m" in text  # disk with sizes and time-to-full
    assert "UTC" in rows[0]


def test_a_standby_behind_reads_lagging_and_a_primary_shows_no_lag() -> None:
    thresholds = Thresholds()
    last = fixture_ticks()[-1]
    orders_a, orders_b = last.node("orders-a"), last.node("orders-b")
    assert orders_a is not None and orders_b is not None
    assert shown_health(orders_b, thresholds)[1] == "LAGGING"
    assert shown_health(orders_a, thresholds)[1] == "OK"
    assert shown_health(orders_b, Thresholds(standby_lag_warning_seconds=60))[1] == "OK"  # within its threshold
    words = {style[1]: count for style, count in fleet_tally(last, thresholds)}
    assert words == {"OK": 1, "LAGGING": 1, "DEGRADED": 1, "DOWN": 1}
    text = wall_text((120, 40))
    assert "lag 0s" not in text  # a primary has no lag to show


def test_twelve_nodes_down_before_any_alert_fires_are_never_all_well() -> None:
    now = datetime(2024, 5, 14, 12, 4, 9, tzinfo=UTC)
    specs = [NodeSpec(name=f"node-{index:02d}", url=f"http://127.0.0.1:{9000 + index}") for index in range(12)]
    nodes = [
        NodeSnapshot(
            name=spec.name,
            engine="lsm",
            role="primary",
            health=Health.DOWN,
            health_reason="connection refused",
            reachable=False,
            unreachable_since=now - timedelta(seconds=5),
            source="http",
            address=spec.url,
            replication=Replication(),
        )
        for spec in specs
    ]
    snapshot = finalize(nodes, specs, Thresholds(), now, source="test")
    assert not snapshot.alerts  # node-down waits node_down_seconds (30 s)
    note = quiet_fleet_note(snapshot, Thresholds())
    assert note.startswith("no alert has fired yet, but 12 of 12 nodes are not OK: 12 DOWN")
    text = wall_text((120, 40), ticks=[snapshot])
    assert "✔ OK no active alerts" not in text and "12 of 12 nodes are not OK" in text
    assert "12 DOWN" in text


def overview_text(size: tuple[int, int]) -> str:
    async def main() -> str:
        app = fixture_app()
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await pilot.pause()
            return screen_text(app)

    return run(main())


def test_the_overview_on_a_wall_screen_fills_it_with_cards_and_their_trends() -> None:
    """200x60: four cards in two rows of two (not three over one), trends charted under the figures."""
    text = overview_text((200, 60))
    rows = text.splitlines()
    blank = [row for row in rows if not set(row) - BORDERS - set("█▀▄")]  # a focused card's tall border too
    # The old layout (three cards over one) left about 30 of 60 rows empty.
    assert len(blank) <= 60 // 5, f"{len(blank)} empty rows of 60:\n{text}"
    titles = [row for row in rows if "· e" in row and ("╭─" in row or "▀" in row)]
    assert len(titles) == 2 and all(row.count(" · e") == 2 for row in titles), titles
    # Each reachable card charts its trends under its figures (the down one has none: no history).
    assert text.count("last 10 readings") == 3
    assert text.count("memory ") >= 3
