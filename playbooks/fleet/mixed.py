"""``fleet_source``: the source for a configured fleet, each node read the best way it can be.

A node with a ``url`` is read over HTTP (its process is the authority on its own state); one with
only a ``data_dir`` is read from disk. ``prefer="local"`` reads every node that has a data dir from
disk (a responder on the box, nodes down); ``prefer="http"`` only over HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from playbooks.fleet.alerts import Thresholds
from playbooks.fleet.http import DEFAULT_TIMEOUT_SECONDS, HttpNodeReader
from playbooks.fleet.local import LocalNodeReader, ProcessFinder
from playbooks.fleet.nodes import NodeSpec
from playbooks.fleet.snapshot import utc_now
from playbooks.fleet.source import Clock, NodeReader, ReaderSource

__all__ = ["MixedSource", "fleet_source"]


class MixedSource(ReaderSource):
    def __init__(self, specs: Sequence[NodeSpec], *, thresholds: Thresholds | None = None,
                 clock: Clock = utc_now, prefer: str = "auto",
                 timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        if prefer not in ("auto", "local", "http"):
            raise ValueError(f"prefer must be auto, local or http, not {prefer!r}")
        self.client: httpx.AsyncClient | None = None
        processes = ProcessFinder()
        readers: list[NodeReader] = []
        kinds = set()
        for spec in specs:
            use_http = spec.url is not None and (prefer == "http" or spec.data_dir is None or prefer == "auto")
            if prefer == "local" and spec.data_dir is not None:
                use_http = False
            if use_http:
                if self.client is None:
                    self.client = httpx.AsyncClient(timeout=httpx.Timeout(timeout_seconds),
                                                    headers={"User-Agent": "drconsole"})
                readers.append(HttpNodeReader(spec, self.client))
                kinds.add("http")
            else:
                readers.append(LocalNodeReader(spec, processes))
                kinds.add("local")
        super().__init__(readers, specs, thresholds=thresholds, clock=clock,
                         deadline_seconds=timeout_seconds * 1.5, label="+".join(sorted(kinds)))

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()


def fleet_source(specs: Sequence[NodeSpec], *, thresholds: Thresholds | None = None,
                 clock: Clock = utc_now, prefer: str = "auto") -> MixedSource:
    """The source for ``specs`` (see the module docstring for which node is read how)."""
    return MixedSource(specs, thresholds=thresholds, clock=clock, prefer=prefer)
