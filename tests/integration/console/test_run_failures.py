"""The Run screen when a run does not go through: a failed step with its reason and the way on; resume.

Held data dir: a real ``drconsole node serve`` process serves a corrupt lsm data dir and the config
names only its data_dir, so the local runner cannot take its safety copy. The Run screen shows
FAILED, the failed step with the engine's reason and the command that stops the process that holds
the lock (found in the kernel's lock table); once that process is stopped, ``r`` resumes the same
run from its journal and it ends verified.

Killed console: a child process runs the console (headless, driven by Pilot) on a playbook with a
slow step and is SIGKILLed in that step; a new console on the same state dir resumes the run with
``r`` from the journal, and the step that was cut off runs again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from console_testkit import screen_text
from support import available_backends
from textual.widgets import Input

import playbooks.actions.testing  # noqa: F401  (registers test.sleep in this process too)
from console.adapters.run_hints import lock_holder
from console.config import load_config
from console.tui.launch import build_app
from console.tui.screens.confirm import ConfirmScreen
from drills.node import free_port
from engines import create_engine
from engines.checks import verify_data_dir
from faults import inject
from playbooks.journal import list_journals

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif("lsm" not in available_backends(), reason="the lsm backend is not built")


async def wait_for(pilot, condition, seconds: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not met in time")


async def confirm(pilot, app) -> None:  # type: ignore[no-untyped-def]
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
    app.screen.query_one(Input).value = "orders"
    await pilot.press("enter")


def corrupt_lsm(data: Path, keys: int = 300) -> None:
    with create_engine(data, backend="lsm") as engine:
        for index in range(keys):
            engine.put(f"order:{index:05d}".encode(), b"paid" * 20)
    inject("sstable-corrupt", data, seed=7)


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """A corrupt lsm data dir served by a real ``drconsole node serve`` process (it holds the lock)."""
    data = tmp_path / "nodes" / "orders"
    corrupt_lsm(data)
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "console",
            "node",
            "serve",
            "--engine",
            "lsm",
            "--data-dir",
            str(data),
            "--port",
            str(port),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else b""
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the node did not come up"
                time.sleep(0.05)
        yield data, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def test_a_failed_step_shows_its_reason_and_the_way_on_then_resume_recovers(
    tmp_path: Path, serving: tuple[Path, subprocess.Popen[bytes]]
) -> None:
    data, node = serving
    holder = lock_holder(data)
    assert holder is not None and holder.pid == node.pid and "node serve" in holder.command
    config_path = tmp_path / "drconsole.toml"
    config_path.write_text('[[node]]\nname = "orders"\nengine = "lsm"\ndata_dir = "nodes/orders"\n')
    app = build_app(
        mode="interactive", theme=None, read_only=False, config=load_config(config_path), watch_terminal=False
    )

    async def main() -> tuple[str, str]:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            app.choose("data-recovery", "orders")
            await pilot.press("s")
            await wait_for(pilot, lambda: app.run_state.done)
            # The way on is drawn after the failure (it looks up who holds the lock): on a loaded
            # machine later than 0.2 s after the run ends, so wait for it rather than a pause.
            await wait_for(pilot, lambda: "then press r to resume" in " ".join(screen_text(app).split()))
            failed = screen_text(app)
            # The responder does what the screen says: stops the node, then resumes.
            node.send_signal(signal.SIGTERM)
            node.wait(timeout=30)
            await pilot.press("r")
            await confirm(pilot, app)
            await wait_for(pilot, lambda: app.run_state.done and app.run_state.resumed)
            await pilot.pause(0.2)
            return failed, screen_text(app)

    failed, resumed = asyncio.run(main())
    # The outcome box scrolls when the way on is long: its scrollbar's thumb ("█") ends the rows it
    # passes, so a line wrapped there reads "kill █ 23540" on the screen.
    flat = " ".join(failed.replace("█", " ").split())
    assert "✖ FAILED" in failed and "SUCCEEDED" not in failed
    assert "✖ safety-copy failed:" in flat and "is in use by another process" in flat
    assert f"kill {node.pid}" in flat and "then press r to resume" in flat, flat  # the whole screen if not
    state = app.run_state
    assert state.result is not None and state.result.status == "succeeded" and state.verified is not None
    assert "✔ SUCCEEDED" in resumed and "verified: node ready at" in resumed
    runs = list_journals(tmp_path / "state" / "runs")
    assert len(runs) == 1 and runs[0].resumes == 1 and runs[0].status == "succeeded"  # the same run, resumed
    assert verify_data_dir(data).ok
    assert app.incident is not None and abs(app.incident.resolved_at - state.verified.at.timestamp()) < 1e-3
    timeline = [event.message for event in app.incident.events]
    assert any(text.startswith("playbook data-recovery failed") for text in timeline), timeline
    assert any("resum" in text and "data-recovery" in text for text in timeline), timeline


SLOW_PLAYBOOK = """\
id = "slow-recovery"
title = "Recovery with a slow step (test)"
severity = "P1"
target_rto_seconds = 600
backends = ["lsm"]

[[steps]]
id = "check"
title = "Find the damage"
action = "engine.verify"
diagnostic = true

[[steps]]
id = "slow"
title = "A long step"
action = "test.sleep"
args = {{ seconds = 60, resumed_seconds = 0.3, marker = "{marker}" }}

[[steps]]
id = "repair"
title = "Repair"
action = "engine.repair"
destructive = true
when = "steps.check.ok == false"

[[steps]]
id = "final-verify"
title = "Final integrity check"
action = "engine.verify"
"""

CHILD = """\
import asyncio, sys
from pathlib import Path
from console.config import load_config
from console.tui.launch import build_app

app = build_app(mode="interactive", theme=None, read_only=False, config=load_config(Path(sys.argv[1])),
                watch_terminal=False)

async def main():
    async with app.run_test(size=(100, 30)) as pilot:
        app.choose("slow-recovery", "orders")
        await pilot.press("s")
        print("started", flush=True)
        await asyncio.sleep(600)  # killed long before

asyncio.run(main())
"""


def test_resume_after_the_console_is_killed_mid_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "nodes" / "orders"
    corrupt_lsm(data, keys=200)
    library = tmp_path / "library"
    library.mkdir()
    marker = tmp_path / "marker"
    (library / "slow-recovery.toml").write_text(SLOW_PLAYBOOK.format(marker=marker))
    config_path = tmp_path / "drconsole.toml"
    config_path.write_text('[[node]]\nname = "orders"\nengine = "lsm"\ndata_dir = "nodes/orders"\n')
    (tmp_path / "child.py").write_text(CHILD)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DRCONSOLE_PLAYBOOK_PATH": str(library),
        "DRCONSOLE_TEST_ACTIONS": "1",
        "DRCONSOLE_STATE_DIR": str(tmp_path / "state"),
    }
    child = subprocess.Popen(
        [sys.executable, str(tmp_path / "child.py"), str(config_path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not (marker.exists() and "slow started" in marker.read_text()):
            assert child.poll() is None, child.stderr.read() if child.stderr else b""
            assert time.monotonic() < deadline, "the slow step did not start"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)  # the console dies in the middle of the slow step
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
    [cut] = list_journals(tmp_path / "state" / "runs")
    assert cut.status is None and cut.interrupted_step == "slow"

    monkeypatch.setenv("DRCONSOLE_PLAYBOOK_PATH", str(library))
    app = build_app(
        mode="interactive", theme=None, read_only=False, config=load_config(config_path), watch_terminal=False
    )

    async def main() -> str:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None and app.selected_node == "orders")
            await pilot.press("3", "r")  # a new console: the Run screen, resume the node's cut-off run
            await confirm(pilot, app)
            await wait_for(pilot, lambda: app.run_state is not None and app.run_state.done)
            await pilot.pause(0.2)
            return screen_text(app)

    text = asyncio.run(main())
    state = app.run_state
    assert state.run_id == cut.run_id and state.resumed
    assert state.result is not None and state.result.status == "succeeded" and state.verified is not None
    assert "✔ SUCCEEDED" in text and "verified: node ready at" in text
    assert marker.read_text().splitlines() == ["slow started", "slow started (resumed)"]
    assert state.statuses["check"] == "problem" and state.statuses["slow"] == "succeeded"
    assert verify_data_dir(data).ok
