"""A recovery that brings the node back but not all of its data says so on the Run screen.

An lsm data dir whose WAL no longer covers its oldest table, with one flipped byte in that table's
first data block, is recovered from the console (data-recovery, the real runner on real files). The
repair salvages the table's sound blocks and loses the damaged block's entries: the screen says
"data lost" with the count and the key range, the status bar's incident verdict says it, and the
incident keeps the run's accounting. A console run in the field said only "✔ SUCCEEDED", "✔ verified",
"✔ restored" while 3,000 keys had gone.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from console_testkit import screen_text
from support import available_backends
from textual.widgets import Input

from console.config import load_config
from console.tui.launch import build_app
from console.tui.screens.confirm import ConfirmScreen
from engines import open_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lsm"))
from lsm_kit import create_lsm, fill, flip, tables  # noqa: E402

pytestmark = pytest.mark.skipif("lsm" not in available_backends(), reason="the lsm backend is not built")


async def wait_for(pilot, condition, seconds: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not met in time")


def test_the_run_screen_and_the_incident_say_what_was_lost(tmp_path: Path) -> None:
    data = tmp_path / "nodes" / "orders"
    with create_lsm(
        data,
        {"memtable_bytes": 1 << 20, "block_bytes": 1024, "levels": 4},
        wal_segment_bytes=64 * 1024,
        wal_keep_segments=1,
    ) as engine:
        older = fill(engine, 800, prefix=b"a")
        engine.flush()
        newer = fill(engine, 800, prefix=b"b")
        engine.flush()
    flip(tables(data)[0], 40)  # the first data block of the table the WAL no longer covers
    config_path = tmp_path / "drconsole.toml"
    config_path.write_text('[[node]]\nname = "orders"\nengine = "lsm"\ndata_dir = "nodes/orders"\n')
    app = build_app(
        mode="interactive", theme=None, read_only=False, config=load_config(config_path), watch_terminal=False
    )

    async def main() -> str:
        async with app.run_test(size=(140, 45)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            app.choose("data-recovery", "orders")
            await pilot.press("s")
            for _ in range(3):  # every destructive step asks for the node's name
                await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen) or app.run_state.done)
                if app.run_state.done:
                    break
                app.screen.query_one(Input).value = "orders"
                await pilot.press("enter")
            await wait_for(pilot, lambda: app.run_state.done)
            await pilot.pause(0.3)
            return screen_text(app)

    shown = asyncio.run(main())
    flat = " ".join(shown.split())
    result = app.run_state.result
    assert result is not None and result.status == "succeeded" and result.lost, result
    assert "⚠ data lost: 1 item(s) not recovered" in flat
    assert "of 800 entries in damaged blocks" in flat and "b'a000000'" in flat
    with open_engine(data, mode="ro") as engine:
        found = dict(engine.scan())
    assert all(key in found for key in newer)
    kept = [key for key in older if key in found]
    assert 700 < len(kept) < 800  # the sound blocks salvaged, the damaged one lost and said so
    assert app.incident is not None and app.incident.lost()
    header = shown.splitlines()[0]
    assert "✔ restored" in header and "⚠ data lost" in header, header  # beside the RTO clock
