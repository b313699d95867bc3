"""Done means verified: the incident resolves, and its RTO clock stops, when the node answers /ready again.

A real ``drconsole node serve`` process is killed with SIGKILL; the process-crash playbook runs on
its data dir (nobody serves it now) and ends with every check passed. The node comes back later
than that (as systemd would restart it): until it answers ``GET /ready`` with 200 the incident stays
open and its clock runs; the resolution is timed at the answer, not at the run's last step.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from integration.served_node import ServedNode

from playbooks.incident_report import report_markdown
from playbooks.incident_store import IncidentStore
from playbooks.incident_verify import verify_recovery
from playbooks.runner import Runner, RunOptions


@pytest.fixture
def node(tmp_path: Path) -> Iterator[ServedNode]:
    serving = ServedNode(tmp_path / "orders")
    try:
        yield serving
    finally:
        serving.stop()


def test_the_clock_stops_when_the_node_answers_ready_not_when_the_run_ends(node: ServedNode) -> None:
    node.start()
    node.write(50)
    node.kill()  # kill -9: a crashed process, its data dir left as it was

    result = Runner().run(
        "process-crash", node.data_dir, RunOptions(assume_yes=True, node="orders", ready_url=node.url)
    )
    run_ended = time.time()
    assert result.status == "succeeded" and not result.partial, result.to_json()
    assert result.incident is not None and result.verified is None  # checks passed; the node does not serve yet
    store = IncidentStore()
    incident = store.load(result.incident)
    assert incident.status == "open" and incident.awaiting_verification and incident.ready_url == node.url
    refused = verify_recovery(store, "orders")
    assert not refused.resolved and "GET" in refused.why  # connection refused: nobody serves the data dir
    assert store.load(result.incident).status == "open"

    time.sleep(1.5)  # the node comes back later than the run ended
    ready_at = node.start()
    deadline = time.monotonic() + 30
    outcome = verify_recovery(store, "orders")
    while not outcome.resolved and time.monotonic() < deadline:
        time.sleep(0.1)
        outcome = verify_recovery(store, "orders")
    assert outcome.resolved, outcome.why
    resolved = store.load(result.incident)
    assert resolved.status == "resolved" and resolved.resolved_at is not None
    assert resolved.resolved_at >= ready_at - 0.5 and resolved.resolved_at >= run_ended + 1.5
    assert resolved.clock_seconds() == pytest.approx(resolved.resolved_at - resolved.opened_at)
    assert "/ready answered 200" in resolved.resolution and result.run_id in resolved.resolution
    assert node.serves(50)  # every acknowledged write
    text = report_markdown(resolved)
    assert "Service restored: GET " in text and "- **Status**: resolved at" in text
    assert "Fix applied: process-crash succeeded" in text
    # Later alerts cannot follow a resolution while the node is down: it resolved only once it served.
    assert httpx.get(f"{node.url}/ready", timeout=5).status_code == 200
