"""Errors of the node layer: the HTTP host of one engine, its replication, and its client.

They extend the engine hierarchy (``engines.errors``), so the CLI renders them and maps them to
exit codes like every other engine error::

    EngineError
    └── NodeError                    a node answered with an error we do not map further   -> 1
        ├── NodeUnreachableError     connection refused, timeout, DNS, protocol failure   -> 3
        ├── NodeRefusedError         the node refused for safety (standby, fenced, 409)   -> 4
        ├── NodeAuthError            missing or wrong bearer token (401/403)              -> 4
        ├── NodeBadRequestError      the node rejected the request as malformed (400/413) -> 2
        └── ReplicationError         a standby cannot follow (gap, divergence, no source) -> 1

``client.py`` maps every ``httpx`` exception to one of these with ``raise ... from exc``;
a test fails if one is left unmapped.
"""

from __future__ import annotations

from engines.errors import EngineError

__all__ = [
    "NodeError",
    "NodeUnreachableError",
    "NodeRefusedError",
    "NodeAuthError",
    "NodeBadRequestError",
    "ReplicationError",
]


class NodeError(EngineError):
    exit_code = 1


class NodeUnreachableError(NodeError):
    exit_code = 3


class NodeRefusedError(NodeError):
    exit_code = 4


class NodeAuthError(NodeError):
    exit_code = 4


class NodeBadRequestError(NodeError):
    exit_code = 2


class ReplicationError(NodeError):
    exit_code = 1
