"""Drills end to end on real engines: RTO measured, RPO = the ledger difference, passed from the targets."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from console.cli.main import main as drconsole
from drills import SCENARIOS, DrillResult, report_markdown, run_drill, scenario_pairs
from engines import open_engine

CONTRACT = {
    "scenario",
    "engine",
    "rto_seconds",
    "rpo_seconds",
    "acked_writes",
    "lost_writes",
    "target_rto_seconds",
    "target_rpo_seconds",
    "passed",
}

# Measured gaps of other layers (see the drill report): the drill reports them; these tests do not hide them.
KNOWN_GAPS: dict[tuple[str, str], str] = {}


def _recount(sandbox: Path) -> tuple[int, int]:
    """(acked, lost) recomputed from the ledger file and the engine, independently of the drill."""
    entries = [json.loads(line) for line in (sandbox / "ledger" / "acked.jsonl").read_text().splitlines() if line]
    newest: dict[str, dict] = {}
    for entry in entries:
        newest[entry["key"]] = entry
    lost = 0
    with open_engine(sandbox / "data", mode="ro") as engine:
        for key, entry in newest.items():
            value = engine.get(key.encode())
            if value is None or hashlib.sha256(value).hexdigest() != entry["sha256"]:
                lost += 1
    return len(entries), lost


def _expected_pass(result: DrillResult) -> bool:
    scenario = SCENARIOS[result.scenario]
    if not result.recovered or result.rto_seconds is None or result.rto_seconds > scenario.target_rto_seconds:
        return False
    return (
        result.lost_writes == 0
        if scenario.target_rpo_seconds == 0
        else result.rpo_seconds <= scenario.target_rpo_seconds
    )


@pytest.mark.parametrize(
    ("scenario", "engine"),
    [
        ("page-corrupt", "cow"),
        ("wal-corrupt-tail", "lsm"),
        ("ransomware", "rocksdb"),
        ("sstable-corrupt", "lsm"),
    ],
)
def test_drill_measures_rto_and_counts_lost_writes_from_the_ledger(tmp_path: Path, scenario: str, engine: str) -> None:
    result = run_drill(scenario, engine, writes_before_backup=150, writes_after_backup=100, keep=True, workdir=tmp_path)
    try:
        assert result.error is None
        assert result.fault["changes"], "the fault changed nothing"
        assert result.playbooks, "the autopilot ran no playbook"
        assert result.recovered and result.rto_seconds is not None and result.rto_seconds > 0
        assert result.acked_writes == 250
        acked, lost = _recount(Path(result.sandbox))
        assert (result.acked_writes, result.lost_writes) == (acked, lost)
        assert (result.rpo_seconds > 0) == (lost > 0)
        assert result.passed == _expected_pass(result)
        assert (result.target_rto_seconds, result.target_rpo_seconds) == (
            SCENARIOS[scenario].target_rto_seconds,
            SCENARIOS[scenario].target_rpo_seconds,
        )
        # the ledger lives outside the data dir
        assert not list((Path(result.sandbox) / "data").rglob("acked.jsonl"))
    finally:
        shutil.rmtree(result.sandbox, ignore_errors=True)


def test_passed_is_false_when_a_target_is_missed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    import drills

    strict = dataclasses.replace(SCENARIOS["config-broken"], target_rto_seconds=0.000001)
    monkeypatch.setitem(drills.SCENARIOS, "config-broken", strict)
    result = run_drill("config-broken", "cow", writes_before_backup=20, writes_after_backup=10, workdir=tmp_path)
    assert result.recovered and result.rto_seconds > strict.target_rto_seconds
    assert result.passed is False


def test_drill_list_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    assert drconsole(["drill", "list", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload) == {"drills"} and payload["drills"]
    for row in payload["drills"]:
        assert {"scenario", "engines", "target_rto_seconds", "target_rpo_seconds", "description"} <= set(row)
        assert row["engines"] and set(row["engines"]) <= {"cow", "lsm", "rocksdb"}
    assert {row["scenario"] for row in payload["drills"]} == set(SCENARIOS)


def test_drill_run_json_contract_and_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    code = drconsole(["drill", "run", "config-broken", "--engine", "lsm", "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert CONTRACT <= set(payload)
    assert list(payload)[: len(CONTRACT)] == [
        "scenario",
        "engine",
        "rto_seconds",
        "rpo_seconds",
        "acked_writes",
        "lost_writes",
        "target_rto_seconds",
        "target_rpo_seconds",
        "passed",
    ]
    assert code == (0 if payload["passed"] else 1)


def test_drill_run_rejects_an_engine_the_scenario_does_not_apply_to(capsys: pytest.CaptureFixture[str]) -> None:
    assert drconsole(["drill", "run", "page-corrupt", "--engine", "lsm", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["exit_code"] == 2


def test_fault_inject_cli_reports_the_change(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from engines import create_engine

    with create_engine(tmp_path / "d", backend="lsm", durability="sync") as engine:
        for number in range(50):
            engine.put(f"k{number}".encode(), b"v" * 50)
    assert (
        drconsole(["fault", "inject", "wal-corrupt-tail", "--data-dir", str(tmp_path / "d"), "--seed", "3", "--json"])
        == 0
    )
    payload = json.loads(capsys.readouterr().out)
    assert payload["kind"] == "wal-corrupt-tail" and payload["changes"][0]["file"].startswith("wal/")
    assert drconsole(["fault", "inject", "sst-corrupt", "--data-dir", str(tmp_path / "d"), "--json"]) == 2


def test_report_markdown_table() -> None:
    result = DrillResult(
        "page-corrupt",
        "cow",
        0.5,
        0.0,
        10,
        0,
        30,
        0,
        True,
        playbooks=[{"playbook": "data-recovery", "status": "succeeded"}],
    )
    table = report_markdown([result])
    assert "| page-corrupt | cow | 30 s | 0.50 s | 0 s | 0 s | 10 | 0 | PASS | data-recovery (succeeded) |" in table


@pytest.mark.slow
@pytest.mark.parametrize(("scenario", "engine"), scenario_pairs())
def test_every_scenario_meets_its_targets(tmp_path: Path, scenario: str, engine: str) -> None:
    if (scenario, engine) in KNOWN_GAPS:
        pytest.xfail(KNOWN_GAPS[(scenario, engine)])
    result = run_drill(scenario, engine, workdir=tmp_path)
    if (
        not result.passed
        and result.recovered
        and result.lost_writes == 0
        and result.rto_seconds is not None
        and SCENARIOS[scenario].needs_node
    ):
        # an RTO-only miss of a node drill: a node restart on a box loaded by parallel workers can take
        # several seconds more; measured once more before it counts as a miss
        result = run_drill(scenario, engine, workdir=tmp_path)
    assert result.error is None, result.error
    assert result.passed, (result.health, result.lost_writes, result.playbooks)


def test_process_kill_drill_with_a_real_node(tmp_path: Path) -> None:
    result = run_drill(
        "process-kill", "cow", writes_before_backup=60, writes_after_backup=40, keep=True, workdir=tmp_path
    )
    try:
        assert result.error is None, result.error
        assert result.fault["changes"][0]["action"] == "signal" and result.fault["changes"][0]["detail"] == "SIGKILL"
        assert result.recovered and result.rto_seconds is not None and result.rto_seconds > 0
        assert result.acked_writes >= 50
        assert (result.acked_writes, result.lost_writes) == _recount(Path(result.sandbox))
        assert result.passed == _expected_pass(result)
        assert any(run["playbook"] == "process-crash" for run in result.playbooks)
    finally:
        shutil.rmtree(result.sandbox, ignore_errors=True)


def test_drill_all_writes_the_metrics_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import drills

    monkeypatch.setattr(
        drills, "scenario_pairs", lambda engine=None: [("config-broken", "cow"), ("page-corrupt", "cow")]
    )
    report = tmp_path / "metrics.md"
    code = drconsole(["drill", "all", "--writes", "40", "--report", str(report), "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert payload["total"] == 2 and len(payload["drills"]) == 2
    assert all(row["acked_writes"] == 40 for row in payload["drills"])
    assert code == (0 if payload["passed"] == 2 else 1)
    table = report.read_text()
    assert "| config-broken | cow |" in table and "| page-corrupt | cow |" in table
