"""FleetSnapshot: immutable, timezone-aware, and the fixed fixture round-trips exactly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from console_testkit import FIXTURE, fixture_ticks
from pydantic import ValidationError

from fleet import (
    DiskUsage,
    FleetSnapshot,
    Health,
    MemoryUsage,
    NodeSnapshot,
    load_recording,
    save_recording,
)

NOW = datetime(2024, 5, 14, 12, 0, tzinfo=UTC)


def test_snapshots_are_frozen() -> None:
    snapshot = FleetSnapshot(taken_at=NOW, nodes=(NodeSnapshot(name="a"),))
    with pytest.raises(ValidationError):
        snapshot.nodes[0].name = "b"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        snapshot.taken_at = NOW  # type: ignore[misc]


def test_times_must_be_timezone_aware() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        FleetSnapshot(taken_at=datetime(2024, 5, 14, 12, 0))
    with pytest.raises(ValidationError, match="timezone-aware"):
        NodeSnapshot(name="a", reachable=False, unreachable_since=datetime(2024, 5, 14, 12, 0))


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError, match="extra"):
        NodeSnapshot.model_validate({"name": "a", "colour": "red"})


def test_ratios_prefer_bytes_and_fall_back_to_what_the_node_reports() -> None:
    assert DiskUsage(volume_total_bytes=200, volume_used_bytes=50).usage_ratio == 0.25
    assert DiskUsage(reported_usage_ratio=0.4).usage_ratio == 0.4
    assert DiskUsage().usage_ratio is None
    assert DiskUsage(volume_total_bytes=200, volume_used_bytes=50).free_bytes == 150
    assert MemoryUsage(host_total_bytes=4, host_used_bytes=3).usage_ratio == 0.75
    assert MemoryUsage().usage_ratio is None


def test_fleet_level_views() -> None:
    last = fixture_ticks()[-1]
    assert [node.name for node in last.nodes] == ["orders-a", "orders-b", "ledger", "cache"]
    assert last.worst_health() == Health.DOWN
    assert [alert.severity.value for alert in last.alerts] == ["critical", "critical", "warning", "warning"]
    assert last.node("ledger") is not None and last.node("nope") is None
    assert FleetSnapshot(taken_at=NOW).worst_health() == Health.UNKNOWN


def test_the_fixture_round_trips_exactly(tmp_path) -> None:
    ticks = load_recording(FIXTURE)
    assert len(ticks) == 10
    copy = tmp_path / "copy.json"
    save_recording(copy, ticks)
    assert load_recording(copy) == ticks
