"""Dry runs change no byte; destructive steps need confirmation; read-only refuses; waivers are audited."""

from __future__ import annotations

from pathlib import Path

import pytest
from playbook_support import corrupt_rocksdb_table, fill, tree_state

from engines.backup import create_backup
from playbooks.audit import AuditLog
from playbooks.loader import Library
from playbooks.runner import Runner, RunOptions
from playbooks.state import StateDir

REQUIRED = {"repo", "until"}


def params_for(playbook_id: str, repo: Path) -> dict[str, str]:
    playbook = Library.load().get(playbook_id)
    values = {}
    for name, spec in playbook.params.items():
        if name == "repo":
            values["repo"] = str(repo)
        elif spec.required and spec.type == "time":
            values[name] = "2026-01-01T00:00:00Z"
    return values


def test_every_playbook_dry_run_changes_nothing(tmp_path: Path, state_dir: Path) -> None:
    data = fill(tmp_path / "db", count=300)
    repo = tmp_path / "repo"
    create_backup(repo, data_dir=data)
    corrupt_rocksdb_table(data)
    before = tree_state(tmp_path)
    runner = Runner()
    for playbook_id in sorted(runner.library.playbooks):
        if "rocksdb" not in runner.library.playbooks[playbook_id].backends:
            continue
        result = runner.run(playbook_id, data, RunOptions(dry_run=True, params=params_for(playbook_id, repo)))
        assert result.dry_run and result.status == "succeeded" and result.run_id is None
        assert all(step.status in ("planned", "skipped") for step in result.steps)
        assert all(step.would_touch for step in result.steps), playbook_id
        if runner.library.playbooks[playbook_id].destructive:
            assert any(step.destructive for step in result.steps)
    assert tree_state(tmp_path) == before  # data dir, repository, and no state dir either


def test_dry_run_shows_the_automatic_safety_copy_and_what_it_touches(tmp_path: Path) -> None:
    data = fill(tmp_path / "db", count=300)
    result = Runner().run("wal-truncate", data, RunOptions(dry_run=True))
    ids = [step.id for step in result.steps]
    assert ids.index("auto-safety-copy") == ids.index("truncate") - 1
    copy = next(step for step in result.steps if step.id == "auto-safety-copy")
    assert any("safety-copy" in line and "copied" in line for line in copy.would_touch)


def test_destructive_steps_without_confirmation_are_refused_and_nothing_changes(tmp_path: Path) -> None:
    data = fill(tmp_path / "db")
    corrupt_rocksdb_table(data)
    before = tree_state(data)
    result = Runner().run("recover-rocksdb", data, RunOptions())
    assert result.status == "refused" and result.exit_code == 4
    assert [step.id for step in result.steps if step.status == "refused"] == ["repair", "restore"]
    assert tree_state(data) == before


def test_a_confirm_callback_is_asked_at_the_step_and_a_no_stops_the_run(tmp_path: Path) -> None:
    data = fill(tmp_path / "db")
    corrupt_rocksdb_table(data)
    asked = []

    def confirm(step: object, target: str) -> bool:
        asked.append((step.id, target))  # type: ignore[attr-defined]
        return False

    result = Runner().run("recover-rocksdb", data, RunOptions(confirm=confirm))
    assert asked == [("repair", "db")]
    assert result.status == "refused"
    statuses = {step.id: step.status for step in result.steps}
    assert statuses["safety-copy"] == "succeeded" and statuses["repair"] == "refused"


def test_read_only_run_is_refused_at_the_first_writing_step(tmp_path: Path) -> None:
    data = fill(tmp_path / "db")
    before = tree_state(data)
    result = Runner().run("process-crash", data, RunOptions(read_only=True))
    assert result.status == "refused" and result.exit_code == 4
    refused = [step for step in result.steps if step.status == "refused"]
    assert refused and refused[0].action == "engine.recover"
    assert tree_state(data) == before
    assert ("engine.recover", "refused") in [
        (e["action"], e["outcome"]) for e in AuditLog(StateDir().audit_log).entries()
    ]


def test_waived_safety_copy_is_audited_and_skipped(tmp_path: Path) -> None:
    data = fill(tmp_path / "db")
    corrupt_rocksdb_table(data)
    result = Runner().run("recover-rocksdb", data, RunOptions(assume_yes=True, waive_safety_copy="disk full"))
    assert result.status == "succeeded", result.to_json()
    assert next(step for step in result.steps if step.id == "safety-copy").status == "skipped"
    waivers = [entry for entry in AuditLog(StateDir().audit_log).entries() if entry["action"] == "safety_copy.waived"]
    assert len(waivers) == 1 and waivers[0]["detail"] == "disk full" and waivers[0]["who"]["user"]


def test_simulate_runs_on_a_sandbox_copy(tmp_path: Path) -> None:
    data = fill(tmp_path / "db")
    corrupt_rocksdb_table(data)
    before = tree_state(data)
    result = Runner().run("data-recovery", data, RunOptions(assume_yes=True, sandbox=True))
    assert result.status == "succeeded", result.to_json()
    assert result.sandboxed_from == str(data) and result.data_dir != str(data)
    assert tree_state(data) == before
    assert result.incident is None


@pytest.mark.parametrize(
    "playbook,problem", [("recover-lsm", "does not apply"), ("no-such-playbook", "no playbook")]
)  # (no playbook is pending any more)
def test_bad_requests_fail_before_anything_runs(tmp_path: Path, playbook: str, problem: str) -> None:
    from playbooks.errors import PlaybookInputError

    data = fill(tmp_path / "db", count=10)
    before = tree_state(data)
    with pytest.raises(PlaybookInputError) as caught:
        Runner().run(playbook, data, RunOptions(assume_yes=True))
    assert problem in caught.value.message and caught.value.exit_code == 2
    assert tree_state(data) == before


def test_missing_and_unknown_parameters(tmp_path: Path) -> None:
    from playbooks.errors import ParameterError

    data = fill(tmp_path / "db", count=10)
    with pytest.raises(ParameterError, match="needs --param repo"):
        Runner().run("backup-full", data, RunOptions())
    with pytest.raises(ParameterError, match="takes no parameter 'colour'"):
        Runner().run("backup-full", data, RunOptions(params={"repo": "/x", "colour": "red"}))
    with pytest.raises(ParameterError, match="expected yes or no"):
        Runner().run("memory-recovery", data, RunOptions(params={"force_low_memory": "maybe"}))
