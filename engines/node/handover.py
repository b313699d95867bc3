"""The handover after a failover: a promoted node holds client writes until the old primary's
acknowledged writes it never received are applied, then opens.

Why hold: a client that writes key K on the new primary before the salvage of the old primary's
tail reaches K turns a write the old primary acknowledged into a "conflict" (or, with a plain
GET-then-PUT salvage, is overwritten by it). Holding client writes for the salvage, bounded by a
deadline after which they open anyway (a playbook cut off must not leave the node refusing
forever), gives RPO 0 for every acknowledged write of the old primary; and the first write a
client gets acknowledged after a failover then marks the end of the whole failover, salvage
included. Reads are not held: they may miss the old primary's tail until the salvage lands, as
they do on any asynchronous standby.

    POST /admin/promote {"hold_writes_seconds": S}   primary in a new epoch; client PUT/DELETE 503
    POST /admin/apply {"rows": [{"key", "value", "expect"}]}   compare-and-set, base64 bytes
    POST /admin/release-writes                       writes open

``apply`` re-applies a row only where the key still holds ``expect`` (its value at the split): the
new primary never changed it. A row whose value is already there is ``present``; anything else is a
``conflict``, left as the primary has it. The rows applied go in one atomic write batch.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from typing import Any

from engines.errors import EngineError
from engines.keys import check_user_key
from engines.node.errors import NodeBadRequestError, NodeError

__all__ = ["WriteHold", "HandoverError", "apply_rows", "encode_bytes", "decode_bytes", "MAX_HOLD_SECONDS"]

MAX_HOLD_SECONDS = 300.0


class HandoverError(NodeError):
    """Client writes wait for the salvage of the old primary's writes (HTTP 503, retry shortly)."""

    exit_code = 3


class WriteHold:
    """Client writes refused until ``release`` or the deadline, whichever comes first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: float | None = None
        self._reason = ""
        self._since = 0.0

    def hold(self, seconds: float, reason: str) -> None:
        if not 0 < seconds <= MAX_HOLD_SECONDS:
            raise NodeBadRequestError(f"hold_writes_seconds must be in (0, {MAX_HOLD_SECONDS:g}], not {seconds}")
        with self._lock:
            self._until = time.monotonic() + seconds
            self._reason = reason
            self._since = time.time()

    def release(self) -> dict[str, Any]:
        with self._lock:
            held = self._until is not None and time.monotonic() < self._until
            self._until = None
            return {"released": held, "held_seconds": round(time.time() - self._since, 3) if held else 0.0}

    def status(self) -> dict[str, Any] | None:
        with self._lock:
            if self._until is None:
                return None
            left = self._until - time.monotonic()
            if left <= 0:
                self._until = None  # the deadline passed: writes open on their own
                return None
            return {"reason": self._reason, "since": self._since, "seconds_left": round(left, 3)}

    def check(self) -> None:
        status = self.status()
        if status is not None:
            raise HandoverError(
                f"writes are held: {status['reason']} ({status['seconds_left']:.1f} s left at most)",
                hint="retry shortly: the node takes writes once the old primary's are applied",
            )


def encode_bytes(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode("ascii")


def decode_bytes(value: Any, what: str) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise NodeBadRequestError(f"{what} must be base64 text or null")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise NodeBadRequestError(f"{what} is not valid base64") from None


def apply_rows(engine: Any, rows: Any) -> tuple[list[dict[str, Any]], int | None]:
    """Compare-and-set ``rows`` on ``engine`` (the caller holds the node lock and checked its role).

    Returns each row's outcome (``applied | present | conflict``, with the value found) and the LSN
    of the batch that applied them (None: nothing to apply).
    """
    if not isinstance(rows, list):
        raise NodeBadRequestError('apply needs {"rows": [{"key": B64, "value": B64|null, "expect": B64|null}]}')
    outcomes: list[dict[str, Any]] = []
    batch: list[tuple[bytes, bytes | None]] = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or "key" not in row:
            raise NodeBadRequestError(f"row {index} must be an object with a key")
        key = decode_bytes(row["key"], f"row {index} key")
        assert key is not None
        try:
            check_user_key(key)
        except EngineError as exc:
            raise NodeBadRequestError(f"row {index}: {exc.message}") from None
        value = decode_bytes(row.get("value"), f"row {index} value")
        expect = decode_bytes(row.get("expect"), f"row {index} expect")
        current = engine.get(key)
        if current == value:
            outcome = "present"
        elif current == expect:
            outcome = "applied"
            batch.append((key, value))
        else:
            outcome = "conflict"
        outcomes.append({"outcome": outcome, "current": encode_bytes(current)})
    lsn = engine.write_batch(batch) if batch else None
    return outcomes, lsn
