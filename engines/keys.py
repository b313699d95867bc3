"""Keys drconsole keeps for itself inside a user's keyspace, and the check at every user-facing door.

A node writes ``__drconsole__/ready`` for its ``/ready`` probe. Such keys are drconsole's, not the
user's: writes and deletes of them are refused where users write (HTTP ``/kv``, ``engine put``,
``engine delete``, ``engine import``), and exports leave them out so that an export always imports
again. The engine API itself stays open to them: the node is an embedded user of it.
"""

from __future__ import annotations

from engines.errors import InvalidArgumentError

__all__ = ["RESERVED_PREFIX", "is_reserved", "check_user_key"]

RESERVED_PREFIX = b"__drconsole__/"


def is_reserved(key: bytes) -> bool:
    return key.startswith(RESERVED_PREFIX)


def check_user_key(key: bytes) -> None:
    """Refuse (exit 2) a key under the reserved prefix."""
    if is_reserved(key):
        raise InvalidArgumentError(
            f"keys under {RESERVED_PREFIX.decode()!r} are reserved for drconsole",
            hint="choose another key; nothing was written",
        )
