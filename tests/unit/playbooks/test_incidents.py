"""The one incident model: the store, the lifecycle rules, the RTO clock, alerts, the accounting, the report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from fleet import Alert, AlertSeverity, FleetSnapshot, NodeSnapshot
from playbooks.accounting import account
from playbooks.incident_alerts import AlertTracker
from playbooks.incident_model import fold, rto_target
from playbooks.incident_report import TODO, report_markdown
from playbooks.incident_store import IncidentStore
from playbooks.incident_triage import TriageRecord
from playbooks.notify import incident_message, run_message
from playbooks.severity import LEVELS

T0 = datetime(2026, 12, 6, 5, 46, 26, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def store_at(clock: Clock) -> IncidentStore:
    return IncidentStore(clock=clock)


def test_one_open_incident_per_target_and_its_severity_only_rises() -> None:
    clock = Clock()
    store = store_at(clock)
    first, created = store.open(
        "orders", severity="P2", title="archive lag", target_rto_seconds=3600, rto_basis="P2 response time"
    )
    assert created and first.id == "INC-20261206-001" and first.status == "open"
    again, created = store.open(
        "orders", severity="P0", title="data corruption", target_rto_seconds=900, rto_basis="P0 response time"
    )
    assert not created and again.id == first.id and again.severity == "P0"
    lower, _ = store.open("orders", severity="P3", title="minor", target_rto_seconds=1, rto_basis="x")
    assert lower.severity == "P0"  # never lowered
    other, created = store.open("ledger", severity="P1", title="crash", target_rto_seconds=3600, rto_basis="y")
    assert created and other.id == "INC-20261206-002"
    assert [incident.target for incident in store.open_incidents()] == ["orders", "ledger"]
    assert store.load(first.id).target_rto_seconds == 3600  # the target set at opening stays


def test_the_rto_target_is_the_recommended_playbooks_else_the_severitys_response_time() -> None:
    assert rto_target("P0", ["data-recovery", "wal-replay"], {"data-recovery": 7200.0}) == (
        7200.0,
        "playbook data-recovery",
    )
    assert rto_target("P0", ["not-in-library"], {}) == (LEVELS["P0"].response_seconds, "P0 response time")
    assert rto_target("P1", [], {}) == (3600.0, "P1 response time")


def test_a_healthy_walk_opens_nothing_and_a_fault_opens_with_the_diagnosis_severity(state_dir: Path) -> None:
    clock = Clock()
    store = store_at(clock)
    walk = TriageRecord(store, "orders")
    assert walk.answered(question="Can the service start?", answer=True, evidence="opens", probe_answer=True) is None
    assert walk.concluded(severity=None, summary="no fault found", recommended=[], targets={}) is None
    assert store.list() == []

    walk = TriageRecord(store, "orders")
    walk.answered(question="Can the service start?", answer=False, evidence="opens", probe_answer=True)  # override
    clock.now += 5
    walk.undone("Can the service start?")
    clock.now += 5
    walk.answered(question="Can the service start?", answer=True, evidence="opens", probe_answer=True)
    clock.now += 5
    walk.answered(
        question="Is data corruption detected?",
        answer=True,
        evidence="checksum mismatch in 000005.sst",
        probe_answer=True,
    )
    clock.now += 10
    incident = walk.concluded(
        severity="P0", summary="Data corruption", recommended=["data-recovery"], targets={"data-recovery": 7200.0}
    )
    assert incident is not None and incident.severity == "P0" and incident.opened_at == T0 + 25
    assert (incident.target_rto_seconds, incident.rto_basis) == (7200.0, "playbook data-recovery")
    kinds = [event.kind for event in incident.events]
    # The answers given before the fault was found are written with the times they were given.
    assert kinds == ["override", "answer_undone", "answer", "answer", "opened", "triage"]
    assert [event.time for event in incident.events][:4] == [T0, T0 + 5, T0 + 10, T0 + 15]
    assert [(answer.question, answer.answer) for answer in incident.answers()] == [
        ("Can the service start?", True),
        ("Is data corruption detected?", True),
    ]
    # While it is open, later answers go to it at once; a healthy walk is noted, and resolves nothing.
    later = TriageRecord(store, "orders")
    assert (
        later.answered(question="Can the service start?", answer=True, evidence="opens", probe_answer=True)
        == incident.id
    )
    noted = later.concluded(severity=None, summary="no fault found", recommended=[], targets={})
    assert noted is not None and noted.id == incident.id and noted.status == "open"


def test_a_walk_undone_from_a_healthy_leaf_to_a_fault_writes_its_whole_path() -> None:
    clock = Clock()
    store = store_at(clock)
    walk = TriageRecord(store, "orders")
    walk.answered(question="Is there a fleet?", answer=True, evidence="1 node", probe_answer=True)
    walk.answered(
        question="Is data corruption detected?", answer=False, evidence="checksum mismatch", probe_answer=True
    )  # an override, to a healthy leaf
    assert walk.concluded(severity=None, summary="no fault found", recommended=[], targets={}) is None
    clock.now += 3
    walk.undone("Is data corruption detected?")
    clock.now += 1
    walk.answered(question="Is data corruption detected?", answer=True, evidence="checksum mismatch", probe_answer=True)
    clock.now += 1
    incident = walk.concluded(severity="P0", summary="Data corruption", recommended=["data-recovery"], targets={})
    assert incident is not None
    assert [(answer.question, answer.answer) for answer in incident.answers()] == [
        ("Is there a fleet?", True),
        ("Is data corruption detected?", True),
    ]
    assert [event.kind for event in incident.events] == [
        "answer",
        "override",
        "answer_undone",
        "answer",
        "opened",
        "triage",
    ]


def test_the_rto_clock_stops_when_the_target_is_verified_serving_not_before() -> None:
    clock = Clock()
    store = store_at(clock)
    incident, _ = store.open(
        "orders", severity="P0", title="corruption", target_rto_seconds=900, rto_basis="P0 response time"
    )
    assert incident.clock_seconds(T0 + 60) == 60 and incident.within_target(T0 + 60)
    clock.now = T0 + 90
    store.record(
        incident.id,
        "run_finished",
        "playbook data-recovery succeeded",
        run_id="r1",
        playbook="data-recovery",
        status="succeeded",
        checks_passed=True,
        ready_url="http://127.0.0.1:1",
    )
    waiting = store.load(incident.id)
    assert waiting.status == "open" and waiting.awaiting_verification and waiting.ready_url == "http://127.0.0.1:1"
    assert waiting.clock_seconds(T0 + 150) == 150  # still running after the run ended
    resolved = store.record_verified("orders", evidence="GET /ready answered 200", at=T0 + 184)
    assert resolved is not None and resolved.status == "resolved" and resolved.resolved_at == T0 + 184
    assert resolved.clock_seconds(T0 + 10_000) == 184 and resolved.within_target(T0 + 10_000)
    assert store.record_verified("orders", evidence="again", at=T0 + 500) is None  # nothing open any more
    closed = store.close(incident.id, "postmortem done", at=T0 + 3600)
    assert closed.status == "closed" and closed.clock_seconds() == 184 and closed.close_reason == "postmortem done"


def test_a_torn_last_line_loses_only_that_line(state_dir: Path) -> None:
    store = store_at(Clock())
    incident, _ = store.open("orders", severity="P1", title="crash", target_rto_seconds=60, rto_basis="x")
    store.record(incident.id, "note", "paged the SRE lead")
    with open(store.path(incident.id), "a", encoding="utf-8") as handle:
        handle.write('{"type": "note", "time": 1')  # a crash mid-append
    assert [event.kind for event in store.load(incident.id).events] == ["opened", "note"]


def snapshot(at: datetime, *alerts: Alert) -> FleetSnapshot:
    names = sorted({alert.node for alert in alerts} | {"orders"})
    return FleetSnapshot(
        taken_at=at,
        nodes=tuple(
            NodeSnapshot(name=name, alerts=tuple(alert for alert in alerts if alert.node == name)) for name in names
        ),
    )


def test_alerts_become_raised_and_cleared_events_with_the_node() -> None:
    at = datetime.fromtimestamp(T0, UTC)
    disk = Alert(rule="disk-usage", severity=AlertSeverity.CRITICAL, node="orders", message="disk 91 % used")
    down = Alert(rule="node-down", severity=AlertSeverity.CRITICAL, node="ledger", message="ledger unreachable")
    tracker = AlertTracker()
    first = tracker.update(snapshot(at, disk))
    assert [(event.kind, event.node, event.message) for event in first] == [
        ("alert", "orders", "critical: disk 91 % used")
    ]
    assert tracker.update(snapshot(at + timedelta(seconds=5), disk)) == []
    both = tracker.update(snapshot(at + timedelta(seconds=9), disk, down))
    assert [(event.kind, event.node) for event in both] == [("alert", "ledger")]
    assert tracker.first_active_at("orders") == T0 and tracker.first_active_at("ledger") == T0 + 9
    cleared = tracker.update(snapshot(at + timedelta(seconds=20), down))
    assert [(event.kind, event.node) for event in cleared] == [("alert_cleared", "orders")]
    assert tracker.first_active_at("orders") is None and tracker.first_active_at() == T0 + 9


def test_the_accounting_counts_lost_only_what_no_later_step_brought_back() -> None:
    repair = {
        "lost": ["000005.sst: 20000 entries, LSNs 1..20000", "LSNs 20001..20100 are in no table"],
        "lost_lsn_ranges": [[20001, 20100], [1, 20000]],
        "quarantine": "/d/.quarantine/x",
    }
    refill = {"replayed": 20100, "recovered_lsn_ranges": [[1, 15000], [15001, 20100]]}
    whole = account({"repair": repair, "refill": refill})
    assert whole.lost == [] and len(whole.recovered) == 2
    assert "re-applied by refill" in whole.recovered[0]
    short = account({"repair": repair, "refill": {"recovered_lsn_ranges": [[1, 20000]]}})
    assert short.lost == [f"{line} (kept in /d/.quarantine/x)" for line in repair["lost"]]
    earlier = account({"refill": refill, "repair": repair})  # a replay before the loss recovers nothing of it
    assert len(earlier.lost) == 2
    unknown = account(
        {"repair": {"lost": ["000007.sst: unreadable, its range is unknown"], "lost_lsn_ranges": []}, "refill": refill}
    )
    assert unknown.lost == ["000007.sst: unreadable, its range is unknown"]


def test_two_later_steps_recover_one_loss_between_them() -> None:
    """The archive re-applied LSN 64.. and the backup fill everything up to its LSN: the loss at 1..143 is
    covered only by both together, and only once the second has run."""
    repair = {"lost": ["000005.sst: 36 entries, LSNs 1..143"], "lost_lsn_ranges": [[1, 143]], "quarantine": "/q"}
    refill = {"recovered_lsn_ranges": [[64, 935]]}
    fill = {"recovered_lsn_ranges": [[0, 63]]}
    assert account({"repair": repair, "refill": refill}).lost == ["000005.sst: 36 entries, LSNs 1..143 (kept in /q)"]
    both = account({"repair": repair, "refill": refill, "fill-exact": fill})
    assert both.lost == [] and "re-applied by fill-exact" in both.recovered[0]
    short = account({"repair": repair, "refill": refill, "fill-exact": {"recovered_lsn_ranges": [[0, 40]]}})
    assert len(short.lost) == 1  # LSNs 41..63 are in neither


def incident_rows() -> list[dict[str, object]]:
    """An incident as its JSONL holds it: a repair that reported 20000 entries lost, a refill that put them back."""

    def row(offset: float, kind: str, message: str, **data: object) -> dict[str, object]:
        return {
            "type": kind,
            "time": T0 + offset,
            "message": message,
            "who": {"user": "alice", "ssh_client": None},
            **data,
        }

    return [
        row(-30, "alert", "critical: error rate 15.3/s", node="orders"),
        row(
            0,
            "opened",
            "incident opened as P0: Data corruption",
            node="orders",
            id="INC-20261206-002",
            target="orders",
            severity="P0",
            title="Data corruption",
            target_rto_seconds=7200,
            rto_basis="playbook data-recovery",
            recommended=["data-recovery"],
        ),
        row(0, "triage", "triage: Data corruption (P0); recommended data-recovery", recommended=["data-recovery"]),
        row(
            -2,
            "answer",
            "Is data corruption detected? yes: checksum mismatch (accepted; by alice)",
            question="Is data corruption detected?",
            answer=True,
            evidence="checksum mismatch",
            probe_answer=True,
        ),
        row(30, "run_started", "playbook data-recovery run r1 started", run_id="r1", playbook="data-recovery"),
        row(
            40,
            "step",
            "repair: 1 item quarantined; lost: 000005.sst: 20000 entries",
            step="repair",
            status="succeeded",
            lost=["000005.sst: 20000 entries"],
        ),
        row(60, "step", "refill: re-applied 20000 records", step="refill", status="succeeded"),
        row(
            90,
            "run_finished",
            "playbook data-recovery succeeded",
            run_id="r1",
            playbook="data-recovery",
            status="succeeded",
            partial=False,
            checks_passed=True,
            lost=[],
            recovered=["000005.sst: 20000 entries (reported by repair, re-applied by refill)"],
            ready_url="http://127.0.0.1:8081",
        ),
        row(184, "verified", "service restored: GET http://127.0.0.1:8081/ready answered 200", run_id="r1"),
    ]


def test_the_report_follows_the_template_and_takes_data_lost_from_the_final_accounting() -> None:
    incident = fold(incident_rows())
    text = report_markdown(incident, now=T0 + 4000)
    for heading in (
        "# Incident Report: INC-20261206-002",
        "## Incident Summary",
        "## Timeline (UTC)",
        "## Root Cause Analysis",
        "### What Happened",
        "### Why It Happened",
        "### Detection",
        "### Response",
        "## Resolution",
        "### Immediate Actions",
        "### Long-term Fixes",
        "## Lessons Learned",
        "### What Went Well",
        "### What Could Be Improved",
        "### Action Items",
        "## Prevention",
        "### Monitoring Improvements",
        "### Process Changes",
        "### Code Changes",
    ):
        assert heading in text
    assert "- **Severity**: P0 (complete service outage or data at risk)" in text
    assert "- **Data Lost**: none (the runs' final accounting)" in text
    assert "20000 entries" not in text.split("## Timeline")[0]  # not in the summary: the refill put them back
    assert "- Re-applied: 000005.sst: 20000 entries (reported by repair, re-applied by refill)" in text
    # The RTO is opened -> verified (3m04s), not opened -> run end (1m30s).
    assert "- **RTO**: 3m04s against a target of 2h (playbook data-recovery): within target" in text
    lines = text.splitlines()
    milestones = lines[lines.index("## Timeline (UTC)") + 1 : lines.index("### Every event") - 1]
    assert milestones == [
        "- 05:45:56 - Issue detected: critical: error rate 15.3/s",
        "- 05:46:26 - Response initiated: INC-20261206-002 opened as P0",
        "- 05:46:26 - Root cause identified: Data corruption (P0); recommended data-recovery",
        "- 05:47:56 - Fix applied: data-recovery succeeded",
        "- 05:49:30 - Service restored: GET http://127.0.0.1:8081/ready answered 200",
    ]
    assert "- Is data corruption detected? **yes** — checksum mismatch [05:46:24, alice]" in text
    assert f"- **Affected Users**: {TODO}" in text
    local = report_markdown(incident, now=T0 + 4000, tz=timezone(timedelta(hours=2), "CEST"))
    assert "## Timeline (CEST)" in local and "- 07:49:30 - Service restored" in local


def test_a_loss_nothing_brought_back_is_in_the_report_with_where_it_is_kept() -> None:
    rows = incident_rows()[:6] + [
        {
            "type": "run_finished",
            "time": T0 + 90,
            "message": "playbook data-recovery succeeded",
            "run_id": "r1",
            "playbook": "data-recovery",
            "status": "succeeded",
            "checks_passed": True,
            "lost": ["000005.sst: 20000 entries (kept in /d/.quarantine/x)"],
        }
    ]
    text = report_markdown(fold(rows), now=T0 + 100)
    assert "- **Data Lost**: 000005.sst: 20000 entries (kept in /d/.quarantine/x) (run r1, data-recovery)" in text
    assert "- **Status**: open: the last run passed its checks; it resolves when the node serves again" in text


def test_the_webhook_says_the_incidents_id_and_severity() -> None:
    incident = fold(incident_rows())
    opened = incident_message(incident, "opened")
    assert opened.startswith("🚨 drconsole INC-20261206-002 P0 on orders: opened") and "RTO target 2h" in opened
    resolved = incident_message(incident, "resolved")
    assert "resolved" in resolved and "RTO 3m04s (target 2h)" in resolved
    assert run_message("data-recovery", "r1", "succeeded", False, "orders", ("INC-20261206-002", "P0")) == (
        "✅ drconsole [INC-20261206-002 P0]: data-recovery succeeded on orders (run r1)"
    )


def test_the_json_of_the_cli_carries_the_clock_and_the_target(state_dir: Path) -> None:
    clock = Clock()
    store = store_at(clock)
    incident, _ = store.open(
        "orders", severity="P0", title="corruption", target_rto_seconds=7200, rto_basis="playbook data-recovery"
    )
    store.record_verified("orders", evidence="opens", at=T0 + 42)
    row = store.load(incident.id).summary_json()
    assert {key: row[key] for key in ("id", "status", "severity", "rto_seconds", "target_rto_seconds")} == {
        "id": incident.id,
        "status": "resolved",
        "severity": "P0",
        "rto_seconds": 42.0,
        "target_rto_seconds": 7200,
    }
    written = [json.loads(line) for line in store.path(incident.id).read_text().splitlines()]
    assert [line["type"] for line in written] == ["opened", "verified"]


@pytest.mark.parametrize("status", ["failed", "refused"])
def test_a_run_that_did_not_pass_its_checks_awaits_nothing(status: str) -> None:
    store = store_at(Clock())
    incident, _ = store.open("orders", severity="P0", title="x", target_rto_seconds=1, rto_basis="x")
    store.record(
        incident.id,
        "run_finished",
        f"playbook p {status}",
        run_id="r",
        playbook="p",
        status=status,
        checks_passed=False,
    )
    assert not store.load(incident.id).awaiting_verification


def test_a_run_joins_the_diagnosis_incident_and_opens_one_only_when_none_is_open() -> None:
    clock = Clock()
    store = store_at(clock)
    diagnosed, _ = store.open(
        "orders", severity="P0", title="Data corruption", target_rto_seconds=7200, rto_basis="playbook data-recovery"
    )
    joined = store.join_run(
        "orders", run_id="r1", playbook="process-crash", severity="P1", title="Process crash", target_rto_seconds=300
    )
    assert joined.id == diagnosed.id and joined.severity == "P0" and joined.target_rto_seconds == 7200
    ended = store.record_run_finished(
        joined.id, "orders", run_id="r1", playbook="process-crash", status="succeeded", partial=True
    )
    assert not ended.awaiting_verification  # a step was passed over: its checks did not all pass
    alone = store.join_run(
        "ledger", run_id="r2", playbook="process-crash", severity="P1", title="Process crash", target_rto_seconds=300
    )
    assert alone.id != diagnosed.id and (alone.severity, alone.target_rto_seconds) == ("P1", 300)
    assert alone.rto_basis == "playbook process-crash" and alone.last_run is not None
