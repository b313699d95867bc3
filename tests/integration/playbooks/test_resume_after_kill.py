"""A ``drconsole playbook run`` killed with SIGKILL mid-step resumes at that step and finishes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from playbook_support import cli, fill, spawn

import playbooks.actions.testing  # noqa: F401  (test.sleep, for the in-process resume)
from playbooks.journal import list_journals, read_journal

SLOW = """id = "t-slow"
title = "a run with a slow step"
severity = "P2"
target_rto_seconds = 60
backends = ["rocksdb", "lsm", "cow"]
guide = "tests"

[[steps]]
id = "copy"
action = "engine.safety_copy"

[[steps]]
id = "flush"
action = "engine.flush"

[[steps]]
id = "slow"
action = "test.sleep"
args = {{ seconds = 60, resumed_seconds = 0.2, marker = "{marker}" }}

[[steps]]
id = "verify"
action = "engine.verify"
"""


@pytest.fixture
def slow_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "library"
    folder.mkdir()
    marker = tmp_path / "marker.txt"
    (folder / "t-slow.toml").write_text(SLOW.format(marker=marker), encoding="utf-8")
    monkeypatch.setenv("DRCONSOLE_PLAYBOOK_PATH", str(folder))
    monkeypatch.setenv("DRCONSOLE_TEST_ACTIONS", "1")
    return marker


def start_and_wait(data: Path, marker: Path) -> object:
    child = spawn("playbook", "run", "t-slow", "--data-dir", data, "--yes", "--json")
    deadline = time.monotonic() + 30
    while not (marker.exists() and "slow started" in marker.read_text()):
        if child.poll() is not None:
            raise AssertionError(f"the run ended early: {child.communicate()}")
        if time.monotonic() > deadline:
            child.kill()
            raise AssertionError("the slow step never started")
        time.sleep(0.05)
    return child


def test_sigkill_mid_step_then_resume_continues_from_that_step(
    tmp_path: Path, slow_library: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = fill(tmp_path / "db", count=500)
    child = start_and_wait(data, slow_library)
    os.kill(child.pid, signal.SIGKILL)  # type: ignore[attr-defined]
    child.wait(timeout=10)  # type: ignore[attr-defined]
    [journal] = list_journals(state_dir / "runs")
    assert journal.status is None and journal.interrupted_step == "slow"
    assert set(journal.finished) == {"copy", "flush"}

    result = cli(capsys, "playbook", "resume", journal.run_id, "--json")
    assert result.code == 0, result.err
    payload = result.json()
    assert payload["run_id"] == journal.run_id and payload["status"] == "succeeded"
    assert [(step["id"], step["status"]) for step in payload["steps"]] == [
        ("copy", "succeeded"),
        ("flush", "succeeded"),
        ("slow", "succeeded"),
        ("verify", "succeeded"),
    ]
    assert slow_library.read_text().splitlines() == ["slow started", "slow started (resumed)"]
    after = read_journal(journal.path)
    starts = [record["step"] for record in after.records if record["type"] == "step_started"]
    assert starts.count("copy") == 1 and starts.count("flush") == 1 and starts.count("slow") == 2
    assert after.status == "succeeded" and after.resumes == 1

    again = cli(capsys, "playbook", "resume", journal.run_id)
    assert again.code == 2 and "already succeeded" in again.err


def test_resume_of_a_run_still_in_progress_is_refused(
    tmp_path: Path, slow_library: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = fill(tmp_path / "db", count=50)
    child = start_and_wait(data, slow_library)
    try:
        [journal] = list_journals(state_dir / "runs")
        result = cli(capsys, "playbook", "resume", journal.run_id)
        assert result.code == 3 and "already running" in result.err
        other = cli(capsys, "playbook", "run", "cache-corruption", "--data-dir", data)
        assert other.code == 3 and "another run is working on" in other.err
    finally:
        child.kill()  # type: ignore[attr-defined]
        child.wait(timeout=10)  # type: ignore[attr-defined]
