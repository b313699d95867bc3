"""What the node actions know about a cluster: its members over HTTP, and where two timelines split.

* ``cluster_urls``: the nodes a playbook works on: the ``nodes`` parameter (URLs, comma- or
  space-separated), else what the data dir says: the URL its serving process listens on, whom it
  follows and its ``--peer`` list, and the ``upstream`` in its ``node.json``.
* ``survey``: one ``GET /health`` and ``GET /replication`` per node, with a short timeout (a hung
  node costs a second, not a minute): reachable, role, epoch, applied LSN, timeline history.
* ``split_lsn``: the last LSN two nodes' histories share. Each promotion appends
  ``{epoch, start_lsn}`` to the promoted node's history (``engines.node.state``); the first entry
  one node has and the other lacks is where they parted, as PostgreSQL's timeline files say. A
  node's records after that LSN never reached the other one: they are its divergent tail.
* ``read_tail``: those records, read from the node's WAL files (read-only; no lock needed), the
  newest value of each key, and the value each had at the split where the WAL still reaches back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engines.errors import EngineError
from engines.node.client import NodeClient
from engines.node.errors import NodeError
from engines.node.node import RESERVED_PREFIX
from engines.node.state import NodeState, TimelineEntry, load_state
from engines.wal import RecoveryMode, WalReader
from playbooks.actions.node_process import serving_process

__all__ = [
    "Member",
    "cluster_urls",
    "survey",
    "split_lsn",
    "divergence",
    "Tail",
    "read_tail",
    "node_url",
    "histories_of",
    "SURVEY_TIMEOUT",
]

SURVEY_TIMEOUT = 1.5  # seconds per request: a SIGSTOPped node never answers, and must not stall a failover


@dataclass
class Member:
    """One node as it answered (or did not) at one moment."""

    url: str
    reachable: bool = False
    name: str = ""
    role: str = "unknown"
    epoch: int | None = None
    applied_lsn: int | None = None
    history: list[TimelineEntry] = field(default_factory=list)
    upstream: str | None = None
    lag_records: int | None = None
    connected: bool | None = None
    follower_state: str | None = None
    peers_reachable: int | None = None
    peers_total: int | None = None
    error: str = ""

    def describe(self) -> str:
        if not self.reachable:
            return f"{self.url} unreachable ({self.error})"
        lag = f", lag {self.lag_records} records" if self.role == "standby" and self.lag_records is not None else ""
        return f"{self.name or self.url} {self.role} in epoch {self.epoch} at LSN {self.applied_lsn}{lag}"

    def to_json(self) -> dict[str, Any]:
        row = {key: value for key, value in self.__dict__.items() if key != "history"}
        row["history"] = [entry.model_dump() for entry in self.history]
        return row


def _split(text: str | None) -> list[str]:
    return [item.rstrip("/") for item in re.split(r"[,\s]+", text or "") if item.strip()]


def node_url(data_dir: Path | None) -> str | None:
    """The URL the process serving ``data_dir`` listens on (None: no live ``node serve`` holds it)."""
    if data_dir is None or not Path(data_dir).exists():
        return None
    serving = serving_process(Path(data_dir))
    return serving.url if serving is not None else None


def cluster_urls(nodes: str | None, data_dir: Path | None) -> list[str]:
    """The nodes to look at: ``nodes`` if given, else everything the data dir's node names."""
    found = _split(nodes)
    if not found and data_dir is not None and Path(data_dir).exists():
        serving = serving_process(Path(data_dir))
        if serving is not None and serving.url is not None:
            found = [serving.url, *_split(serving.option("--follow")), *_split(" ".join(serving.options("--peer")))]
        state = _state(Path(data_dir))
        if state is not None and state.upstream:
            found.append(state.upstream.rstrip("/"))
    unique: list[str] = []
    for url in found:
        if url not in unique:
            unique.append(url)
    return unique


def _state(data_dir: Path) -> NodeState | None:
    try:
        return load_state(data_dir)
    except EngineError:
        return None


def survey(urls: list[str], *, token: str | None = None, timeout: float = SURVEY_TIMEOUT) -> list[Member]:
    members = []
    for url in urls:
        member = Member(url)
        with NodeClient(url, token=token, timeout=timeout, read_only=True) as client:
            try:
                health = client.health()
                replication = client.replication()
            except NodeError as exc:
                member.error = exc.message
                members.append(member)
                continue
            try:
                peers = client.peers().get("peers", [])
            except NodeError:
                peers = []
        member.reachable = True
        member.name = str(health.get("name") or "")
        member.role = str(replication.get("role") or health.get("role") or "unknown")
        member.epoch = _int(replication.get("epoch", health.get("epoch")))
        member.applied_lsn = _int(replication.get("applied_lsn", health.get("last_lsn")))
        member.upstream = replication.get("upstream")
        member.lag_records = _int(replication.get("lag_records"))
        member.connected = replication.get("connected")
        member.follower_state = replication.get("follower_state")
        member.history = [TimelineEntry(**entry) for entry in replication.get("history") or []]
        member.peers_total = len(peers)
        member.peers_reachable = sum(1 for peer in peers if isinstance(peer, dict) and peer.get("reachable"))
        members.append(member)
    return members


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def histories_of(data_dir: Path) -> tuple[list[TimelineEntry], str | None]:
    """The saved timeline history of ``data_dir``'s node, and its saved role."""
    state = _state(data_dir)
    return (list(state.history), state.role) if state is not None else ([], None)


def split_lsn(mine: list[TimelineEntry], theirs: list[TimelineEntry]) -> int | None:
    """The last LSN two histories share; None when neither has an entry the other lacks."""
    own = {(entry.epoch, entry.start_lsn) for entry in mine}
    other = {(entry.epoch, entry.start_lsn) for entry in theirs}
    parted = [start for _epoch, start in own ^ other]
    return min(parted) if parted else None


def divergence(
    mine: list[TimelineEntry], my_role: str | None, theirs: list[TimelineEntry], their_epoch: int | None
) -> int | None:
    """Where this node's log left the other's: ``split_lsn``; and for two primaries promoted in one
    epoch (same history, so split_lsn sees nothing), where this one's own promotion began: every
    record after it was written while it was a primary that the other never heard of."""
    split = split_lsn(mine, theirs)
    if split is not None or not mine or my_role not in ("primary", "fenced"):
        return split
    latest = max(mine, key=lambda entry: entry.epoch)
    return latest.start_lsn if latest.epoch == their_epoch else None


@dataclass
class Tail:
    """A node's records after the split: the newest value of each key, and what it held at the split."""

    split: int
    first_lsn: int | None = None  # the first record after the split found in the WAL
    last_lsn: int | None = None
    records: int = 0
    newest: dict[bytes, bytes | None] = field(default_factory=dict)
    before: dict[bytes, bytes | None] = field(default_factory=dict)  # at the split, where the WAL reaches back
    gap: tuple[int, int] | None = None  # LSNs after the split no longer in the WAL (flushed and recycled)


def read_tail(data_dir: Path, split: int) -> Tail:
    """The records of ``data_dir``'s WAL after LSN ``split`` (a torn or bad tail ends the read)."""
    reader = WalReader(Path(data_dir) / "wal")
    tail = Tail(split)
    for record in reader.records(from_lsn=split + 1, mode=RecoveryMode.POINT_IN_TIME):
        if tail.first_lsn is None:
            tail.first_lsn = record.lsn
        tail.last_lsn = record.lsn
        tail.records += 1
        for key, value in record.entries():
            if not key.startswith(RESERVED_PREFIX):
                tail.newest[key] = value
    if tail.first_lsn is not None and tail.first_lsn > split + 1:
        tail.gap = (split + 1, tail.first_lsn - 1)
    if tail.newest:
        # The value each key had at the split: the other side still holds it unless it changed the key too.
        for record in reader.records(from_lsn=0, to_lsn=split, mode=RecoveryMode.POINT_IN_TIME):
            for key, value in record.entries():
                if key in tail.newest:
                    tail.before[key] = value
    return tail
