"""A tiny real HTTP server that answers like ``drconsole node serve`` (DESIGN.md, Nodes and replication).

Several fake nodes live under path prefixes of one uvicorn server on 127.0.0.1 (``/n/<name>/health``
...); each one's answers are plain data the test changes between ticks. No mock of httpx: the
source under test talks real HTTP to a real socket.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

__all__ = ["FakeNode", "NodeServer", "dead_url"]


@dataclass
class FakeNode:
    name: str
    backend: str = "lsm"
    role: str = "primary"
    epoch: int = 1
    last_lsn: int = 1000
    status_code: int = 200
    reason: str = ""
    delay_seconds: float = 0.0
    replication: dict[str, Any] = field(default_factory=dict)
    peers: list[str] = field(default_factory=list)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.writes = Histogram(
            "drconsole_write_latency_seconds",
            "write latency",
            registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0),
        )
        self.reads = Histogram(
            "drconsole_read_latency_seconds",
            "read latency",
            registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25),
        )
        self.errors = Counter("drconsole_operation_errors", "errors", registry=self.registry)
        self.disk_ratio = Gauge("drconsole_disk_usage_ratio", "disk", registry=self.registry)
        self.rss = Gauge("process_resident_memory_bytes", "rss", registry=self.registry)

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "ok" if self.status_code == 200 else "down",
            "name": self.name,
            "backend": self.backend,
            "role": self.role,
            "epoch": self.epoch,
            "last_lsn": self.last_lsn,
            "stats": {
                "backend": self.backend,
                "total_keys": 4200,
                "disk_usage_bytes": 9 * 2**20,
                "memory_usage_bytes": 2**20,
                "wal_bytes": 2**20,
                "last_lsn": self.last_lsn,
                "details": {},
            },
            "disk": {"path": "/data", "total_bytes": 100 * 2**30, "used_bytes": 40 * 2**30},
            "memory": {"host_total_bytes": 16 * 2**30, "host_used_bytes": 4 * 2**30},
        }
        if self.reason:
            body["reason"] = self.reason
        return body


class NodeServer:
    """Runs in a thread for the duration of a test; ``url(name)`` is a node's base URL."""

    def __init__(self) -> None:
        self.nodes: dict[str, FakeNode] = {}
        self.requests = 0
        routes = [Route("/n/{name}/{endpoint}", self._endpoint)]
        self.app = Starlette(routes=routes)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=0.2)
        )
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def add(self, node: FakeNode) -> FakeNode:
        self.nodes[node.name] = node
        return node

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/n/{name}"

    def __enter__(self) -> NodeServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test HTTP server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()

    async def _endpoint(self, request: Request) -> Response:
        self.requests += 1
        node = self.nodes.get(request.path_params["name"])
        if node is None:
            return PlainTextResponse("no such node", status_code=404)
        if node.delay_seconds:
            await asyncio.sleep(node.delay_seconds)
        endpoint = request.path_params["endpoint"]
        if endpoint == "health":
            return JSONResponse(node.health(), status_code=node.status_code)
        if endpoint == "replication":
            body = {
                "role": node.role,
                "epoch": node.epoch,
                "upstream": None,
                "applied_lsn": node.last_lsn,
                "primary_lsn": node.last_lsn,
                "lag_records": 0,
                "lag_bytes": 0,
                "lag_seconds": 0.0,
                "split_brain": False,
                **node.replication,
            }
            return JSONResponse(body)
        if endpoint == "metrics":
            return Response(generate_latest(node.registry), media_type="text/plain; version=0.0.4")
        if endpoint == "peers":
            return JSONResponse({"peers": [{"name": peer, "url": f"http://{peer}"} for peer in node.peers]})
        return PlainTextResponse("not found", status_code=404)


def dead_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}"
