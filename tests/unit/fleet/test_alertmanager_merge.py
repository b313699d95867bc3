"""Alertmanager's alerts merged into the fleet snapshot, and the silence a console sends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from fleet import Alert, AlertSeverity, FleetSnapshot, Health, NodeSnapshot, NodeSpec
from fleet.alertmanager import AlertingSource, AlertmanagerClient, SilenceRequest, firing_alert, parse_time

NOW = datetime(2026, 11, 23, 12, 4, 9, tzinfo=UTC)
SPECS = [NodeSpec(name="orders-a", url="http://127.0.0.1:8081"), NodeSpec(name="orders-b", url="http://10.0.0.2:8081")]


def raw(name: str, severity: str = "critical", **labels: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, "severity": severity, **labels},
        "annotations": {"summary": f"{name} summary", "triage": "primary-down"},
        "startsAt": "2026-11-23T12:03:41.123456789Z",
    }


def snapshot() -> FleetSnapshot:
    own = Alert(rule="node-down", severity=AlertSeverity.CRITICAL, node="orders-a", message="unreachable since 12:03")
    return FleetSnapshot(
        taken_at=NOW,
        nodes=(
            NodeSnapshot(name="orders-a", reachable=False, health=Health.DOWN, alerts=(own,)),
            NodeSnapshot(name="orders-b", health=Health.OK, address="http://10.0.0.2:8081"),
            NodeSnapshot(name="127.0.0.1:9100", health=Health.OK, address="http://127.0.0.1:9100"),
        ),
    )


def merge(firing: list[dict[str, Any]]) -> FleetSnapshot:
    source = AlertingSource(None, AlertmanagerClient("http://127.0.0.1:9"), SPECS)  # type: ignore[arg-type]
    return source.merge(snapshot(), firing)


def test_an_alert_replaces_the_consoles_own_alert_of_the_same_rule_on_the_same_node() -> None:
    merged = merge([raw("DrconsoleNodeDown", rule="node-down", instance="127.0.0.1:8081")])
    (alert,) = merged.node("orders-a").alerts  # type: ignore[union-attr]
    assert (alert.source, alert.rule, alert.triage) == ("alertmanager", "node-down", "primary-down")
    assert alert.message == "DrconsoleNodeDown (Alertmanager): DrconsoleNodeDown summary"
    assert alert.since == datetime(2026, 11, 23, 12, 3, 41, 123456, tzinfo=UTC)  # nanoseconds cut to micro
    assert dict(alert.labels)["instance"] == "127.0.0.1:8081"


def test_alerts_find_their_node_by_node_label_instance_or_address_and_the_rest_become_notices() -> None:
    merged = merge(
        [
            raw("A", node="orders-b"),
            raw("B", "warning", instance="10.0.0.2:8081"),
            raw("C", instance="127.0.0.1:9100"),
            raw("DrconsoleTwoPrimariesSameEpoch", job="drconsole"),
        ]
    )
    b = merged.node("orders-b")
    assert b is not None and sorted(alert.rule for alert in b.alerts) == ["A", "B"]
    assert b.health == Health.DEGRADED and b.health_reason.startswith("A (Alertmanager)")  # a critical one
    assert [alert.rule for alert in merged.node("127.0.0.1:9100").alerts] == ["C"]  # type: ignore[union-attr]
    assert merged.notices == (
        "Alertmanager: DrconsoleTwoPrimariesSameEpoch firing, not tied to a node: "
        "DrconsoleTwoPrimariesSameEpoch summary",
    )


def test_of_two_alerts_for_one_rule_on_one_node_the_critical_one_stays() -> None:
    merged = merge(
        [
            raw("DrconsoleReplicationLagHigh", "warning", rule="replication-lag", node="orders-b"),
            raw("DrconsoleReplicationLagCritical", "critical", rule="replication-lag", node="orders-b"),
        ]
    )
    (alert,) = merged.node("orders-b").alerts  # type: ignore[union-attr]
    assert alert.severity == AlertSeverity.CRITICAL and "Critical" in alert.message


def test_an_alert_without_rule_label_or_triage_annotation_uses_the_alertname_tables() -> None:
    alert = firing_alert({"labels": {"alertname": "DrconsoleDiskSpaceLow"}, "annotations": {}}, "orders-a")
    assert (alert.rule, alert.triage, alert.severity, alert.since) == ("disk-usage", "running-disk", "warning", None)
    assert parse_time("yesterday") is None and parse_time(12) is None


def test_a_silence_matches_the_alerts_labels_exactly_for_its_duration() -> None:
    request = SilenceRequest(
        (("alertname", "DrconsoleNodeDown"), ("instance", "127.0.0.1:8081")), 1800, "ops", "failing over"
    )
    body = request.body(NOW)
    assert body["matchers"] == [
        {"name": "alertname", "value": "DrconsoleNodeDown", "isRegex": False, "isEqual": True},
        {"name": "instance", "value": "127.0.0.1:8081", "isRegex": False, "isEqual": True},
    ]
    assert (body["startsAt"], body["endsAt"]) == ("2026-11-23T12:04:09+00:00", "2026-11-23T12:34:09+00:00")
    assert (body["createdBy"], body["comment"]) == ("ops", "failing over")


@pytest.mark.parametrize(
    ("labels", "seconds", "comment", "said"),
    [
        ((), 60, "x", "would match everything"),
        ((("alertname", "A"),), 0, "x", "positive duration"),
        ((("alertname", "A"),), 60, " ", "an author and a comment"),
    ],
)
def test_a_silence_that_would_be_wrong_is_not_sent(labels: Any, seconds: float, comment: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        SilenceRequest(labels, seconds, "ops", comment).body(NOW)
