"""The node: one engine hosted over HTTP, its replication, failover and fencing, and its client.

    config.py       NodeConfig: what ``drconsole node serve`` was asked to do
    node.py         Node: the open engine, its role (primary/standby/fenced) and the transitions
    state.py        role, timeline history and known epoch, persisted in node.json (+ epoch in drconsole.json)
    app.py          the Starlette routes (/health /ready /metrics /replication /peers /kv /wal /admin)
    server.py       uvicorn in the foreground (serve) or in a thread (ServerThread), clean SIGTERM
    replication.py  the standby's follower: pull WAL, apply in LSN order, archive fallback, reseed, lag
    reseed.py       which full backup a standby too far behind reseeds from, and the report of it
    divergence.py   rejoining an old primary: the fork LSN, exporting its diverged records (JSONL)
    lag.py          CommitClock: the primary's view of each standby's lag in seconds
    wal_tail.py     incremental reads of the primary's WAL for standbys
    wire.py         the framing of shipped WAL records (length + crc32c + WAL payload)
    peers.py        peer polling: fencing on a higher epoch, split brain, isolation, partitions
    metrics.py      the Prometheus metrics of DESIGN.md
    client.py       NodeClient (httpx), read-only capable
    errors.py       the node errors (exit codes 1-4)

Only ``client`` and ``errors`` are light to import; the rest pull in Starlette and uvicorn.
"""

from engines.node.client import NodeClient, read_token_file
from engines.node.config import NodeConfig
from engines.node.errors import (
    NodeAuthError,
    NodeBadRequestError,
    NodeError,
    NodeRefusedError,
    NodeUnreachableError,
    ReplicationError,
)

__all__ = [
    "NodeAuthError",
    "NodeBadRequestError",
    "NodeClient",
    "NodeConfig",
    "NodeError",
    "NodeRefusedError",
    "NodeUnreachableError",
    "ReplicationError",
    "read_token_file",
]
