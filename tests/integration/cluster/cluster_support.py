"""Helpers of the cluster tests: the two-node fleet, writes with their acknowledgements, the CLI."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support import CliResult, run_cli_in_process

from drills.cluster import ClusterNode
from engines.node.client import NodeClient
from engines.node.state import load_state
from playbooks.actions.node_cluster import Member, survey
from playbooks.state import StateDir


@dataclass
class Fleet:
    root: Path
    engine: str
    nodes: list[ClusterNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.a = ClusterNode("node-a", self.root / "node-a", self.engine, self.root / "node-a.log")
        self.b = ClusterNode("node-b", self.root / "node-b", self.engine, self.root / "node-b.log", follow=self.a.url)
        self.a.peers, self.b.peers = [self.b.url], [self.a.url]
        self.nodes = [self.a, self.b]

    @property
    def urls(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def start(self) -> None:
        self.a.start()
        self.b.start()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def members(self) -> dict[str, Member]:
        return {member.url: member for member in survey([node.url for node in self.nodes], timeout=2.0)}

    def wait(self, check: Any, timeout: float = 20.0, what: str = "") -> dict[str, Member]:
        deadline = time.monotonic() + timeout
        members = self.members()
        while not check(members):
            assert time.monotonic() < deadline, (
                f"timed out waiting for {what}: {[m.describe() for m in members.values()]}"
            )
            time.sleep(0.1)
            members = self.members()
        return members

    def caught_up(self, standby: ClusterNode) -> dict[str, Member]:
        return self.wait(
            lambda members: (
                members[standby.url].role == "standby"
                and members[standby.url].connected
                and members[standby.url].lag_records == 0
            ),
            what=f"{standby.name} caught up",
        )


def write(url: str, prefix: str, count: int) -> dict[bytes, bytes]:
    """``count`` acknowledged puts; returns key -> value of each (every one was acknowledged)."""
    acked = {}
    with NodeClient(url, timeout=10.0) as client:
        for number in range(count):
            key, value = f"{prefix}{number:05d}".encode(), f"value {prefix} {number} {time.time_ns()}".encode()
            client.put(key, value)
            acked[key] = value
    return acked


def missing(url: str, acked: dict[bytes, bytes]) -> list[bytes]:
    with NodeClient(url, timeout=10.0) as client:
        return [key for key, value in acked.items() if client.get(key) != value]


def role_in_state(data_dir: Path) -> str | None:
    state = load_state(data_dir)
    return state.role if state is not None else None


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> CliResult:
    """``drconsole ARGS`` in this process (its output captured; never a traceback)."""
    from console.cli.main import main

    return run_cli_in_process(capsys, main, *args)


def audit_actions(state_dir: Path) -> list[tuple[str, str]]:
    """(action, outcome) of every audit entry, in order."""
    path = StateDir(state_dir).audit_log
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(row["action"], row["outcome"]) for row in rows]
