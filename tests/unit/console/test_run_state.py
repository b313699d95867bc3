"""RunState folds the runner's own RunEvents; the runner's RunResult decides the rows and the run's status."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from console.adapters.run_adapter import verification
from console.adapters.run_hints import lock_holder, next_actions
from console.adapters.run_state import RunState, Verified
from playbooks.events import RunEvent
from playbooks.runner import RunResult, StepOutcome

PLAN = [
    StepOutcome("safety-copy", "engine.safety_copy", "planned", summary="Safety copy"),
    StepOutcome("check", "engine.verify", "planned", summary="Find the damage"),
    StepOutcome("repair", "engine.repair", "planned", summary="Repair", destructive=True),
    StepOutcome("final-verify", "engine.verify", "planned", summary="Final check"),
]


def event(kind: str, step: str | None = None, **fields: object) -> RunEvent:
    return RunEvent(kind=kind, run_id="r1", playbook="recover-lsm", step_id=step, **fields)  # type: ignore[arg-type]


def planned_state() -> RunState:
    state = RunState("recover-lsm", "orders", title="Recover")
    state.show_plan(RunResult(None, "recover-lsm", "succeeded", list(PLAN), dry_run=True))
    return state


def test_progress_moves_with_steps_and_bytes() -> None:
    state = planned_state()
    state.apply(event("run_started", steps=4))
    state.apply(event("step_started", "safety-copy", index=1, message="Safety copy"))
    assert state.fraction() == 0.0 and state.status == "running"
    state.apply(event("progress", "safety-copy", done=50, total=100, unit="bytes", eta_seconds=2.0))
    assert state.fraction() == 0.125
    state.apply(event("step_finished", "safety-copy", status="succeeded", message="copied"))
    assert state.fraction() == 0.25 and state.progress is None


def test_a_diagnostic_problem_is_not_a_failure_and_a_failed_step_never_sits_in_a_succeeded_run() -> None:
    state = planned_state()
    state.apply(event("run_started"))
    state.apply(event("step_finished", "safety-copy", status="succeeded"))
    state.apply(event("step_finished", "check", status="problem", message="1 problem"))
    state.apply(event("step_started", "repair", index=3))
    state.apply(event("step_finished", "repair", status="failed", message="disk full"))
    state.apply(event("run_finished", status="failed", message="repair failed: disk full"))
    assert state.status == "verifying"  # the runner has not returned yet
    result = RunResult(
        "r1",
        "recover-lsm",
        "failed",
        [
            StepOutcome("safety-copy", "engine.safety_copy", "succeeded"),
            StepOutcome("check", "engine.verify", "problem"),
            StepOutcome("repair", "engine.repair", "failed", summary="disk full"),
        ],
        message="repair failed: disk full",
    )
    state.settle(result)
    assert state.status == "failed"
    assert state.statuses == {
        "safety-copy": "succeeded",
        "check": "problem",
        "repair": "failed",
        "final-verify": "not-run",
    }
    assert state.failed_step() is not None and state.failed_step().id == "repair"
    assert state.reasons["repair"] == "disk full"
    assert "press r to resume from repair" in next_actions(state, None)[0]


def test_succeeded_is_shown_only_once_verified() -> None:
    steps = [
        StepOutcome("check", "engine.verify", "problem"),
        StepOutcome("repair", "engine.repair", "succeeded"),
        StepOutcome("final-verify", "engine.verify", "succeeded", summary="verify ok: 400 keys"),
    ]
    # The runner kept an incident and resolved it: its evidence is the verification.
    kept = RunResult("r1", "recover-lsm", "succeeded", steps, incident="INC-1", verified="the data dir opens")
    assert verification(kept) == ("the data dir opens", None, "")
    # It kept one and did not resolve it: not verified, whatever the steps say.
    open_still = RunResult("r1", "recover-lsm", "succeeded", steps, incident="INC-1")
    assert verification(open_still)[0] is None
    # Through an agent: the node's own moment of /ready.
    remote = RunResult("r1", "recover-lsm", "succeeded", steps, node_url="http://n", verified_ready_at=1_700_000_000.0)
    assert verification(remote)[:2] == ("the node answered /ready after run r1", 1_700_000_000.0)
    # No incident kept (a routine playbook): its last verification step decides.
    routine = RunResult("r1", "recover-lsm", "succeeded", steps)
    verified, at, why = verification(routine)
    assert verified == "final-verify: verify ok: 400 keys" and at is None and why == ""
    state = planned_state()
    state.settle(routine, verified=Verified(datetime(2026, 1, 1, tzinfo=UTC), verified))
    assert state.status == "succeeded"
    unchecked = RunResult("r2", "disk-space", "succeeded", [StepOutcome("usage", "disk.usage", "succeeded")])
    assert verification(unchecked) == (
        None,
        None,
        "the playbook has no step that checks the node; run post-recovery-validation to verify it",
    )
    state = planned_state()
    state.settle(unchecked, unverified=verification(unchecked)[2])
    assert state.status == "unverified"
    problem = RunResult(
        "r3", "x", "succeeded", [StepOutcome("verify-after", "engine.verify", "problem", summary="bad")]
    )
    assert verification(problem)[0] is None and "verify-after, problem: bad" in verification(problem)[2]


def test_steps_the_plan_did_not_show_get_rows_where_they_ran() -> None:
    state = planned_state()
    state.apply(event("run_started"))
    state.apply(
        event(
            "step_started",
            "auto-safety-copy",
            index=3,
            message="safety copy before destructive steps",
            data={"action": "engine.safety_copy"},
        )
    )
    assert [step.id for step in state.steps][:3] == ["safety-copy", "check", "auto-safety-copy"]
    state.apply(event("step_started", "repair:rollback", index=3, message="roll back repair"))
    assert [step.id for step in state.steps].index("repair:rollback") == [s.id for s in state.steps].index("repair") + 1


def test_the_log_keeps_every_log_event_and_each_step_its_own() -> None:
    state = planned_state()
    state.apply(event("run_started", message="recover-lsm on /data"))
    state.apply(event("step_started", "check", message="Find the damage"))
    state.apply(event("log", "check", message="read 3 tables", level="info"))
    state.apply(event("log", "check", message="table 2 is short", level="warning"))
    state.apply(event("log", None, message="notification: sent", level="info"))
    assert [line.text for line in state.step_log("check")] == ["read 3 tables", "table 2 is short"]
    assert [line.text for line in state.log if line.source == "log"] == [
        "read 3 tables",
        "table 2 is short",
        "notification: sent",
    ]


def test_the_holder_of_a_data_dir_lock_is_named_with_the_command_to_stop_it(tmp_path: Path) -> None:
    holder_code = (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
        "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", holder_code, str(tmp_path / "drconsole.lock")], stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == b"held"
        holder = lock_holder(tmp_path)
        assert holder is not None and holder.pid == process.pid and "fcntl" in holder.command
        assert holder.stop_command() == (f"systemctl stop {holder.unit}" if holder.unit else f"kill {process.pid}")
    finally:
        process.kill()
        process.wait(timeout=10)
    deadline = time.monotonic() + 5
    while lock_holder(tmp_path) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lock_holder(tmp_path) is None


def test_a_plan_that_arrives_after_the_run_started_still_gives_every_step_a_row() -> None:
    """The responder pressed s before the dry run came back: the unreached steps are rows, then not run."""
    state = RunState("recover-lsm", "orders", title="Recover")
    state.started = True
    state.apply(event("run_started", steps=4))
    state.apply(event("step_started", "safety-copy", index=1))
    state.apply(event("step_finished", "safety-copy", status="succeeded"))
    state.apply(event("step_started", "check", index=2))
    state.show_plan(RunResult(None, "recover-lsm", "succeeded", list(PLAN), dry_run=True))
    assert [step.id for step in state.steps] == ["safety-copy", "check", "repair", "final-verify"]
    assert state.statuses["safety-copy"] == "succeeded" and state.statuses["check"] == "running"
    assert state.statuses["repair"] == "planned"
    state.apply(event("step_finished", "check", status="problem"))
    state.apply(event("step_finished", "repair", status="refused", message="the node name did not match"))
    result = RunResult(
        "r1",
        "recover-lsm",
        "refused",
        [
            StepOutcome("safety-copy", "engine.safety_copy", "succeeded"),
            StepOutcome("check", "engine.verify", "problem"),
            StepOutcome("repair", "engine.repair", "refused"),
        ],
    )
    state.settle(result)
    assert state.statuses == {
        "safety-copy": "succeeded",
        "check": "problem",
        "repair": "refused",
        "final-verify": "not-run",
    }


def test_a_plan_that_arrives_after_the_run_ended_shows_its_unreached_steps_as_not_run() -> None:
    state = RunState("recover-lsm", "orders", title="Recover")
    state.started = True
    state.apply(event("run_started", steps=4))
    state.apply(event("step_finished", "safety-copy", status="succeeded"))
    state.settle(
        RunResult("r1", "recover-lsm", "failed", [StepOutcome("safety-copy", "engine.safety_copy", "succeeded")])
    )
    state.show_plan(RunResult(None, "recover-lsm", "succeeded", list(PLAN), dry_run=True))
    assert [step.id for step in state.steps] == ["safety-copy", "check", "repair", "final-verify"]
    assert state.statuses == {
        "safety-copy": "succeeded",
        "check": "not-run",
        "repair": "not-run",
        "final-verify": "not-run",
    }
