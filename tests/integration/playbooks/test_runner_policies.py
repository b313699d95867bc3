"""on_failure (stop, retry, continue, rollback), the event stream, the journal, notifications."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from playbook_support import corrupt_rocksdb_table, fill

import playbooks.actions.testing  # noqa: F401  (registers test.sleep and test.fail)
from engines import open_engine
from playbooks.events import RunEvent
from playbooks.incidents import IncidentStore, report_markdown
from playbooks.journal import read_journal
from playbooks.loader import LIBRARY_DIR, Library
from playbooks.runner import Runner, RunOptions


def library_with(tmp_path: Path, playbook_id: str, steps: str, params: str = "") -> Library:
    folder = tmp_path / "library"
    folder.mkdir(exist_ok=True)
    (folder / f"{playbook_id}.toml").write_text(
        f'''id = "{playbook_id}"
title = "test playbook"
severity = "P2"
target_rto_seconds = 60
backends = ["rocksdb", "lsm", "cow"]
guide = "tests"
{params}
{steps}''',
        encoding="utf-8",
    )
    return Library.load([LIBRARY_DIR, folder])


def failing(tmp_path: Path, on_failure: str, times: int, extra: str = "") -> str:
    return f'''
[[steps]]
id = "first"
action = "engine.flush"

[[steps]]
id = "flaky"
action = "test.fail"
args = {{ counter = "{tmp_path / "counter"}", times = {times} }}
on_failure = "{on_failure}"
destructive = true
{extra}

[[steps]]
id = "last"
action = "engine.verify"
'''


def test_retry_runs_the_step_again_until_it_succeeds(tmp_path: Path) -> None:
    data = fill(tmp_path / "db", count=10)
    library = library_with(tmp_path, "t-retry", failing(tmp_path, "retry", 2, "retries = 2"))
    result = Runner(library).run("t-retry", data, RunOptions(assume_yes=True))
    flaky = next(step for step in result.steps if step.id == "flaky")
    assert result.status == "succeeded" and flaky.attempts == 3


def test_stop_fails_the_run_and_the_journal_says_what_was_done(tmp_path: Path) -> None:
    data = fill(tmp_path / "db", count=10)
    library = library_with(tmp_path, "t-stop", failing(tmp_path, "stop", 5))
    result = Runner(library).run("t-stop", data, RunOptions(assume_yes=True))
    assert result.status == "failed" and result.exit_code == 1
    assert [step.id for step in result.steps] == ["first", "auto-safety-copy", "flaky"]
    assert result.escalation == ["DevOps on-call", "SRE lead", "Engineering manager"]
    journal = read_journal(Path(result.journal or ""))
    assert journal.status == "failed"
    assert journal.finished["first"]["status"] == "succeeded"
    assert journal.finished["flaky"]["status"] == "failed" and "test failure" in journal.finished["flaky"]["summary"]
    assert "last" not in journal.started


def test_continue_goes_on_and_marks_the_run_partial(tmp_path: Path) -> None:
    data = fill(tmp_path / "db", count=10)
    library = library_with(tmp_path, "t-continue", failing(tmp_path, "continue", 5))
    result = Runner(library).run("t-continue", data, RunOptions(assume_yes=True))
    assert result.status == "succeeded" and result.partial
    assert [step.status for step in result.steps][-2:] == ["failed", "succeeded"]


def test_rollback_puts_the_safety_copy_back(tmp_path: Path) -> None:
    data = fill(tmp_path / "db", count=10)
    steps = f'''
[[steps]]
id = "damage"
action = "engine.smoke_test"

[[steps]]
id = "flaky"
action = "test.fail"
args = {{ counter = "{tmp_path / "counter"}", times = 5 }}
destructive = true
on_failure = "rollback"
'''
    library = library_with(tmp_path, "t-rollback", steps)
    with open_engine(data) as engine:
        engine.put(b"before", b"1")
    runner = Runner(library)
    result = runner.run("t-rollback", data, RunOptions(assume_yes=True))
    assert result.status == "failed"
    rollback = result.steps[-1]
    assert rollback.id == "flaky:rollback" and rollback.status == "succeeded"
    with open_engine(data) as engine:
        assert engine.get(b"before") == b"1" and engine.verify().ok
    assert "rollback succeeded" in result.message


def test_events_reach_every_listener_in_order_with_progress_and_eta(tmp_path: Path) -> None:
    data = fill(tmp_path / "db", count=2000)
    corrupt_rocksdb_table(data)
    seen: list[RunEvent] = []
    other: list[str] = []

    def broken(event: RunEvent) -> None:
        raise RuntimeError("a renderer bug")

    runner = Runner(listeners=[seen.append, broken, lambda event: other.append(event.kind)])
    result = runner.run("data-recovery", data, RunOptions(assume_yes=True))
    assert result.status == "succeeded"
    kinds = [event.kind for event in seen]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert other == kinds
    assert {"step_started", "step_finished", "progress", "needs_confirmation"} <= set(kinds)
    progress = [event for event in seen if event.kind == "progress"]
    assert progress[-1].done == progress[-1].total and progress[-1].unit == "bytes"
    assert any(event.eta_seconds is not None for event in progress)
    started = [event for event in seen if event.kind == "step_started"]
    assert [event.index for event in started] == sorted(event.index for event in started)


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def receiver() -> Any:
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Receiver.received
    server.shutdown()


def test_webhook_gets_success_and_failure_and_a_dead_one_fails_nothing(tmp_path: Path, receiver: Any) -> None:
    url, received = receiver
    data = fill(tmp_path / "db", count=10)
    assert Runner().run("cache-corruption", data, RunOptions(webhook=url)).status == "succeeded"
    library = library_with(tmp_path, "t-stop", failing(tmp_path, "stop", 5))
    assert Runner(library).run("t-stop", data, RunOptions(webhook=url, assume_yes=True)).status == "failed"
    assert received[0]["text"].startswith("✅") and "cache-corruption succeeded" in received[0]["text"]
    assert received[1]["text"].startswith("🚨") and "FAILED" in received[1]["text"]
    dead = Runner().run("cache-corruption", data, RunOptions(webhook="http://127.0.0.1:9/nothing"))
    assert dead.status == "succeeded"
    journal = read_journal(Path(dead.journal or ""))
    assert any("webhook failed" in record["message"] for record in journal.logs)


def test_incident_report_follows_the_guides_template(tmp_path: Path) -> None:
    data = fill(tmp_path / "db", count=10)
    result = Runner().run("process-crash", data, RunOptions())
    incident = IncidentStore().load(result.incident or "")
    text = report_markdown(incident)
    for heading in (
        "## Incident Summary",
        "## Timeline (UTC)",
        "## Root Cause Analysis",
        "## Resolution",
        "## Lessons Learned",
        "### Action Items",
        "## Prevention",
    ):
        assert heading in text
    assert "- **Severity**: P1" in text and "restart: succeeded" in text


def test_a_failed_verification_fails_the_step_and_stops_the_run(tmp_path: Path) -> None:
    data = fill(tmp_path / "db")
    corrupt_rocksdb_table(data)
    steps = """
[[steps]]
id = "flush"
action = "engine.flush"
verify = "engine.verify"

[[steps]]
id = "never"
action = "engine.verify"
"""
    library = library_with(tmp_path, "t-verify", steps)
    result = Runner(library).run("t-verify", data, RunOptions())
    assert result.status == "failed" and [step.id for step in result.steps] == ["flush"]
    assert "verification failed" in result.steps[0].summary
    journal = read_journal(Path(result.journal or ""))
    assert journal.finished["flush"]["result"]["verification"]["ok"] is False
    assert any("verification (engine.verify)" in record["message"] for record in journal.logs)
