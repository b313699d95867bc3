"""The run's journal header: what ``Run.header()`` writes, ``Run.from_header`` reads back unchanged."""

from __future__ import annotations

from pathlib import Path

from playbooks.loader import Library
from playbooks.plan import build_plan
from playbooks.runner_model import Run, RunOptions


def _run(tmp_path: Path, **options: object) -> Run:
    library = Library.load()
    playbook = library.get("recover-lsm")
    plan = build_plan(library, playbook, "lsm")
    return Run.new(
        "20260101-000000-000-beef",
        playbook,
        tmp_path / "db",
        "lsm",
        {"repo": "/r"},
        plan,
        RunOptions(**options),
        {"user": "ops", "ssh_client": None},
        sandboxed_from=None,
    )


def test_the_header_round_trips(tmp_path: Path) -> None:
    run = _run(tmp_path, assume_yes=True, waive_safety_copy="disk full", node="orders-a")
    header = run.header()
    again = Run.from_header({**header, "time": 1234.5}, RunOptions())
    assert again.header() == header
    assert (again.started_at, again.safety.waived, again.assume_yes, again.target) == (
        1234.5,
        "disk full",
        True,
        "orders-a",
    )
    assert [step.id for step in again.plan] == [step.id for step in run.plan]


def test_a_sandbox_run_opens_no_incident_and_an_older_journal_still_says_where_it_came_from(tmp_path: Path) -> None:
    run = _run(tmp_path, sandbox=True)
    assert run.wants_incident is False and _run(tmp_path).wants_incident is True
    header = run.header()
    del header["sandboxed_from"]
    header["simulated_from"] = "/data/orders"  # written before the copy was called a sandbox
    assert Run.from_header(header, RunOptions()).sandboxed_from == "/data/orders"
