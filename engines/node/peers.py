"""Peers: every ``--peer`` URL polled for its role, epoch and view of the primary.

What the poll is for (the Plumtree reference's isolated node and partition, and fencing):
* a peer that is a primary in a higher epoch fences this node if it is a primary too;
* a peer that is a primary in the same epoch while this node is one is a split brain;
* a peer that is a primary in a lower epoch is stale: it is told to fence itself (with the
  shared admin token, when one is configured), and fences itself anyway at its next poll of us;
* no reachable peer at all is an isolated node; reachable peers naming different primaries
  are a partition.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from engines.node.state import plausible_epoch

__all__ = ["PeerStatus", "PeerMonitor"]


@dataclass
class PeerStatus:
    url: str
    reachable: bool = False
    last_contact: float | None = None
    last_error: str | None = None
    name: str | None = None
    role: str | None = None
    epoch: int | None = None
    last_lsn: int | None = None
    primary: str | None = None
    split_brain: bool | None = None


class PeerMonitor:
    def __init__(self, node: Any, peers: list[str], interval: float) -> None:
        self.node = node
        self.interval = interval
        self.status = {url: PeerStatus(url) for url in peers}
        self._stop = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(max(0.5, interval), connect=0.5))
        self._thread = threading.Thread(target=self._run, name="peer-monitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            for url in list(self.status):
                if self._stop.is_set():
                    break
                self.poll(url)
            self._stop.wait(self.interval)

    def poll(self, url: str) -> PeerStatus:
        peer = self.status[url]
        try:
            response = self._client.get(f"{url}/health")
            body = response.json()
            peer.reachable = True
            peer.last_contact = time.time()
            peer.last_error = None
            peer.name = body.get("name")
            peer.role = body.get("role")
            peer.epoch = plausible_epoch(body.get("epoch", 0))
            if peer.epoch is None:
                raise ValueError(f"epoch {str(body.get('epoch'))[:40]} is not an epoch (0..2**53-1)")
            peer.last_lsn = body.get("last_lsn")
            peer.primary = body.get("primary")
            peer.split_brain = body.get("split_brain")
        except (httpx.HTTPError, ValueError, AttributeError, TypeError) as exc:
            peer.reachable = False
            peer.last_error = f"{type(exc).__name__}: {exc}"
            return peer
        self._react(peer)
        return peer

    def _react(self, peer: PeerStatus) -> None:
        node = self.node
        if peer.epoch is None:
            return
        if peer.epoch > node.state.known_epoch or (peer.role == "primary" and peer.epoch > node.epoch):
            node.learn_epoch(peer.epoch, f"peer {peer.name or peer.url}")
        if node.role == "primary" and peer.role == "primary" and peer.epoch < node.epoch:
            self._tell_to_fence(peer)

    def _tell_to_fence(self, peer: PeerStatus) -> None:
        token = self.node.config.token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            self._client.post(
                f"{peer.url}/admin/fence",
                headers=headers,
                json={
                    "epoch": self.node.epoch,
                    "reason": f"{self.node.config.name} ({self.node.url}) is the primary in epoch {self.node.epoch}",
                },
            )
        except httpx.HTTPError:
            pass  # it fences itself when it polls us

    # ------------------------------------------------------------------ views
    def split_brain(self) -> bool:
        node = self.node
        return any(p.reachable and p.role == "primary" and p.epoch == node.epoch for p in self.status.values())

    def primary_seen(self) -> str | None:
        best: PeerStatus | None = None
        for peer in self.status.values():
            if peer.reachable and peer.role == "primary" and (best is None or (peer.epoch or 0) > (best.epoch or 0)):
                best = peer
        return best.url if best is not None else None

    def report(self) -> dict[str, Any]:
        peers = [asdict(peer) for peer in self.status.values()]
        reachable = [peer for peer in self.status.values() if peer.reachable]
        views = {peer.primary for peer in reachable if peer.primary}
        mine = self.node.believed_primary()
        if mine:
            views.add(mine)
        return {
            "peers": peers,
            "isolated": bool(self.status) and not reachable,
            "partition": len(views) > 1,
            "primaries_named": sorted(views),
            "split_brain": self.node.split_brain,
        }
