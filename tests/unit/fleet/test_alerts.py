"""The reference alert rules, their thresholds from configuration, and what finalize adds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fleet import (
    DiskUsage,
    Health,
    MemoryUsage,
    NodeSnapshot,
    NodeSpec,
    Performance,
    Replication,
    Thresholds,
    evaluate_alerts,
    finalize,
)

NOW = datetime(2024, 5, 14, 12, 0, tzinfo=UTC)


def rules(node: NodeSnapshot, thresholds: Thresholds | None = None) -> list[str]:
    return [alert.rule for alert in evaluate_alerts(node, thresholds or Thresholds(), NOW)]


def test_defaults_are_the_reference_rules() -> None:
    thresholds = Thresholds()
    assert (thresholds.disk_usage, thresholds.memory_usage, thresholds.node_down_seconds) == (0.85, 0.90, 30)
    assert (thresholds.write_p95_ms, thresholds.read_p95_ms, thresholds.error_rate_per_second) == (100, 50, 0.01)


@pytest.mark.parametrize(("used", "fires"), [(85, False), (86, True)])
def test_disk_fires_above_85_percent(used: int, fires: bool) -> None:
    node = NodeSnapshot(name="n", disk=DiskUsage(volume_path="/data", volume_total_bytes=100, volume_used_bytes=used))
    assert ("disk-usage" in rules(node)) is fires
    if fires:
        [alert] = evaluate_alerts(node, Thresholds(), NOW)
        assert alert.message == "disk 86 % used on /data (threshold 85 %)"
        assert alert.severity.value == "critical"


@pytest.mark.parametrize(("used", "fires"), [(90, False), (91, True)])
def test_memory_fires_above_90_percent(used: int, fires: bool) -> None:
    node = NodeSnapshot(name="n", memory=MemoryUsage(host_total_bytes=100, host_used_bytes=used))
    assert ("memory-usage" in rules(node)) is fires


@pytest.mark.parametrize(("seconds", "fires"), [(29, False), (30, True)])
def test_node_down_after_30_seconds(seconds: int, fires: bool) -> None:
    node = NodeSnapshot(
        name="n",
        reachable=False,
        health=Health.DOWN,
        unreachable_since=NOW - timedelta(seconds=seconds),
        disk=DiskUsage(volume_total_bytes=100, volume_used_bytes=99),
    )
    # An unreachable node's other figures are stale: only node-down may fire.
    assert rules(node) == (["node-down"] if fires else [])


def test_latency_and_error_rules_are_warnings() -> None:
    node = NodeSnapshot(name="n", performance=Performance(write_p95_ms=101, read_p95_ms=51, error_rate_per_second=0.02))
    alerts = evaluate_alerts(node, Thresholds(), NOW)
    assert [(alert.rule, alert.severity.value) for alert in alerts] == [
        ("error-rate", "warning"),
        ("write-p95", "warning"),
        ("read-p95", "warning"),
    ]
    assert (
        rules(
            NodeSnapshot(
                name="n", performance=Performance(write_p95_ms=100, read_p95_ms=50, error_rate_per_second=0.01)
            )
        )
        == []
    )


def test_thresholds_come_from_configuration() -> None:
    node = NodeSnapshot(
        name="n", disk=DiskUsage(volume_total_bytes=100, volume_used_bytes=60), replication=Replication(lag_seconds=90)
    )
    assert rules(node) == []
    assert rules(node, Thresholds(disk_usage=0.5, replication_lag_seconds=60)) == ["disk-usage", "replication-lag"]


def test_thresholds_reject_nonsense() -> None:
    with pytest.raises(ValueError):
        Thresholds(disk_usage=85)
    with pytest.raises(ValueError):
        Thresholds(colour="red")  # type: ignore[call-arg]


def primary(name: str, epoch: int) -> NodeSnapshot:
    return NodeSnapshot(name=name, role="primary", epoch=epoch, health=Health.OK)


def test_two_primaries_of_one_group_in_one_epoch_are_a_split_brain() -> None:
    specs = [
        NodeSpec(name="a", url="http://a"),
        NodeSpec(name="b", url="http://b", role="standby", upstream="a"),
        NodeSpec(name="other", url="http://o"),
    ]
    # b was promoted without fencing a: both primaries in epoch 4. "other" is another replica set.
    snapshot = finalize([primary("a", 4), primary("b", 4), primary("other", 4)], specs, Thresholds(), NOW)
    assert snapshot.split_brain_nodes == ("a", "b")
    a = snapshot.node("a")
    assert a is not None and a.health == Health.DEGRADED and a.alerts[0].rule == "split-brain"
    # A promotion that bumped the epoch is not a split brain.
    assert finalize([primary("a", 4), primary("b", 5)], specs, Thresholds(), NOW).split_brain_nodes == ()


def test_critical_alerts_degrade_a_healthy_node_and_say_why() -> None:
    node = NodeSnapshot(
        name="n",
        health=Health.OK,
        health_reason="serving",
        disk=DiskUsage(volume_total_bytes=100, volume_used_bytes=97),
    )
    [result] = finalize([node], [], Thresholds(), NOW).nodes
    assert result.health == Health.DEGRADED
    assert result.health_reason == "disk 97 % used (threshold 85 %)"


def test_local_standby_lag_is_measured_in_records() -> None:
    specs = [NodeSpec(name="p", data_dir="/p"), NodeSpec(name="s", data_dir="/s", role="standby", upstream="p")]
    nodes = [NodeSnapshot(name="p", role="primary", last_lsn=500), NodeSnapshot(name="s", role="standby", last_lsn=380)]
    standby = finalize(nodes, specs, Thresholds(), NOW).node("s")
    assert standby is not None
    assert standby.replication.upstream == "p"
    assert (standby.replication.applied_lsn, standby.replication.primary_lsn, standby.replication.lag_records) == (
        380,
        500,
        120,
    )
