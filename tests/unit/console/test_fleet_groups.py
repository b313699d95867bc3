"""Replication groups: from the config (group, upstream) and from what the nodes report (upstream, standbys, peers)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from console.config import ConfigError, load_config
from fleet import FleetSnapshot, Health, NodeSnapshot, NodeSpec, Replication, Thresholds, finalize
from fleet.groups import GroupTracker, assign_groups
from fleet.source import replica_groups

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def node(name: str, role: str = "primary", **fields: object) -> NodeSnapshot:
    return NodeSnapshot(
        name=name,
        role=role,
        epoch=0,
        health=Health.OK,
        source="http",
        address=f"http://127.0.0.1:80{ord(name[0]) % 90:02d}",
        **fields,
    )  # type: ignore[arg-type]


def groups_of(snapshot: FleetSnapshot) -> dict[str, str | None]:
    return {item.name: item.group for item in snapshot.nodes}


def test_independent_primaries_are_groups_of_one_and_never_a_split_brain() -> None:
    specs = [
        NodeSpec(name=name, url=f"http://127.0.0.1:{port}")
        for name, port in (("orders", 8081), ("ledger", 8082), ("cache", 8083))
    ]
    snapshot = finalize([node("orders"), node("ledger"), node("cache")], specs, Thresholds(), NOW)
    assert groups_of(snapshot) == {"orders": "orders", "ledger": "ledger", "cache": "cache"}
    assert snapshot.split_brain_nodes == ()
    assert all(item.health == Health.OK for item in snapshot.nodes)


def test_group_from_the_config_upstream_and_explicit_names() -> None:
    specs = [
        NodeSpec(name="a", url="http://h:1"),
        NodeSpec(name="b", url="http://h:2", role="standby", upstream="a"),
        NodeSpec(name="x", url="http://h:3", group="ledger"),
        NodeSpec(name="y", url="http://h:4", group="ledger"),
        NodeSpec(name="z", url="http://h:5"),
    ]
    assert replica_groups(specs) == {"a": "a", "b": "a", "x": "ledger", "y": "ledger", "z": "z"}
    snapshot = finalize([node("a"), node("b", "standby"), node("x"), node("y"), node("z")], specs, Thresholds(), NOW)
    assert groups_of(snapshot) == {"a": "a", "b": "a", "x": "ledger", "y": "ledger", "z": "z"}
    assert set(snapshot.split_brain_nodes) == {"x", "y"}  # two primaries of group ledger in epoch 0


def test_group_from_what_the_nodes_report_by_name_or_url() -> None:
    specs = [
        NodeSpec(name="p", url="http://h:1"),
        NodeSpec(name="s", url="http://h:2"),
        NodeSpec(name="q", url="http://h:3"),
        NodeSpec(name="t", url="http://h:4"),
    ]
    nodes = [
        node("p", replication=Replication(standbys=("s",))),
        node("s", "standby", replication=Replication(upstream="http://h:1")),
        node("q", peers=("http://h:4",)),
        node("t", "standby"),
    ]
    assert groups_of(finalize(nodes, specs, Thresholds(), NOW)) == {"p": "p", "s": "p", "q": "q", "t": "q"}


def test_a_member_that_stops_answering_stays_in_its_group() -> None:
    specs = [NodeSpec(name="p", url="http://h:1"), NodeSpec(name="s", url="http://h:2")]
    tracker = GroupTracker()
    first = finalize(
        [node("p"), node("s", "standby", replication=Replication(upstream="http://h:1"))],
        specs,
        Thresholds(),
        NOW,
        groups=tracker,
    )
    assert groups_of(first) == {"p": "p", "s": "p"}
    silent = NodeSnapshot(name="s", role="standby", reachable=False, health=Health.DOWN)
    assert groups_of(finalize([node("p"), silent], specs, Thresholds(), NOW, groups=tracker)) == {"p": "p", "s": "p"}
    # Without the tracker's memory nothing links them any more.
    assert groups_of(FleetSnapshot(taken_at=NOW, nodes=tuple(assign_groups([node("p"), silent], specs)))) == {
        "p": "p",
        "s": "s",
    }


def test_config_group_field_and_a_standby_in_another_group_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "drconsole.toml"
    config.write_text(
        '[[node]]\nname = "a"\nurl = "http://127.0.0.1:1"\ngroup = "orders"\n\n'
        '[[node]]\nname = "b"\nurl = "http://127.0.0.1:2"\nrole = "standby"\nupstream = "a"\n'
        'group = "ledger"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert caught.value.line == 11 and caught.value.field is not None and "group" in caught.value.field
    config.write_text(config.read_text().replace('"ledger"', '"orders"'), encoding="utf-8")
    loaded = load_config(config)
    assert [spec.group for spec in loaded.nodes] == ["orders", "orders"]
