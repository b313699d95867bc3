"""``fleet_source``: the source for a configured fleet, each node read the best way it can be.

A node with a ``url`` is read over HTTP (its process is the authority on its own state); one with
only a ``data_dir`` is read from disk. ``prefer="local"`` reads every node that has a data dir from
disk (a responder on the box, nodes down); ``prefer="http"`` only over HTTP. With a Prometheus URL
the fleet is read from Prometheus and these readers are its fallback; with an Alertmanager URL its
firing alerts are merged in.

The HTTP and local readers are imported when a node needs them: a fleet of data dirs never pays
for httpx, and one of URLs never for the engines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fleet.alerts import Thresholds
from fleet.nodes import NodeSpec
from fleet.snapshot import utc_now
from fleet.source import Clock, FleetSource, NodeReader, ReaderSource

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "MixedSource", "fleet_source", "uses_http"]

DEFAULT_TIMEOUT_SECONDS = 1.0


def uses_http(spec: NodeSpec, prefer: str) -> bool:
    """Whether ``spec`` is read over HTTP under ``prefer`` ("auto" | "local" | "http")."""
    if spec.url is None:
        return False
    return not (prefer == "local" and spec.data_dir is not None)


class MixedSource(ReaderSource):
    def __init__(
        self,
        specs: Sequence[NodeSpec],
        *,
        thresholds: Thresholds | None = None,
        clock: Clock = utc_now,
        prefer: str = "auto",
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        if prefer not in ("auto", "local", "http"):
            raise ValueError(f"prefer must be auto, local or http, not {prefer!r}")
        self.clients: list[httpx.AsyncClient] = []  # one per node read over HTTP (see http.node_client)
        processes: Any = None
        readers: list[NodeReader] = []
        for spec in specs:
            if spec.data_dir is not None and processes is None:
                from fleet.local import ProcessFinder

                processes = ProcessFinder()  # one scan of the process table serves every node
            if uses_http(spec, prefer):
                readers.append(self._http_reader(spec, timeout_seconds, processes))
            else:
                from fleet.local import LocalNodeReader

                readers.append(LocalNodeReader(spec, processes))
        kinds = sorted({"http" if uses_http(spec, prefer) else "local" for spec in specs})
        super().__init__(
            readers,
            specs,
            thresholds=thresholds,
            clock=clock,
            deadline_seconds=timeout_seconds * 1.5,
            label="+".join(kinds),
        )

    def _http_reader(self, spec: NodeSpec, timeout_seconds: float, processes: Any) -> NodeReader:
        from fleet.http import HttpNodeReader, node_client

        client = node_client(timeout_seconds)
        self.clients.append(client)
        return HttpNodeReader(spec, client, processes)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


def fleet_source(
    specs: Sequence[NodeSpec],
    *,
    thresholds: Thresholds | None = None,
    clock: Clock = utc_now,
    prefer: str = "auto",
    prometheus_url: str | None = None,
    alertmanager_url: str | None = None,
    prometheus_timeout_seconds: float = 2.0,
    alertmanager_timeout_seconds: float = 2.0,
    rate_window: str = "1m",
) -> FleetSource:
    """The source for ``specs`` (see the module docstring for which node is read how).

    With ``prometheus_url`` the snapshot comes from PromQL, and the direct polling of the nodes is
    only its fallback (fleet.prometheus); with ``alertmanager_url`` Alertmanager's firing
    alerts are merged into the nodes (fleet.alertmanager).
    """
    source: FleetSource = MixedSource(specs, thresholds=thresholds, clock=clock, prefer=prefer)
    if prometheus_url is not None:
        from fleet.prometheus import PrometheusSource

        source = PrometheusSource(
            specs,
            prometheus_url,
            thresholds=thresholds,
            clock=clock,
            timeout_seconds=prometheus_timeout_seconds,
            rate_window=rate_window,
            fallback=source,
        )
    if alertmanager_url is not None:
        from fleet.alertmanager import AlertingSource, AlertmanagerClient

        source = AlertingSource(
            source,
            AlertmanagerClient(alertmanager_url, timeout_seconds=alertmanager_timeout_seconds),
            specs,
            clock=clock,
        )
    return source
