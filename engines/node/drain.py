"""Letting go of the data dir while the node keeps listening: the request gate and the extension hook.

A step of a recovery that needs the data dir's files (a repair, a restore, a WAL truncation) must
not run under the open engine. The node therefore *drains*: the gate stops admitting requests
(they get 503 ``{"status": "recovering"}`` and a ``Retry-After``), the ones in flight finish, the
engine closes and the data dir's lock is free. Afterwards it *reopens*: the engine opens again
(replaying its WAL), the node's role is read back from ``node.json``, and the gate opens.

Who decides when is not the node's business: an extension mounted by ``build_app`` (the playbook
agent of ``playbooks/agent``, composed by ``drconsole node serve``) gets a ``NodeControl`` and
calls ``release`` / ``reopen``. Paths the gate never closes: ``/health`` (it says "recovering")
and each extension's own prefix (the agent must answer while the node is drained).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from starlette.responses import JSONResponse
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from engines.node.node import Node

__all__ = ["RequestGate", "GateMiddleware", "NodeControl", "NodeExtension", "ExtensionFactory"]


class RequestGate:
    """Counts the requests in flight; once closed, admits none until opened again."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._in_flight = 0
        self.reason: str | None = None

    def enter(self) -> str | None:
        """Admit a request (None), or the reason it is refused."""
        with self._cond:
            if self.reason is not None:
                return self.reason
            self._in_flight += 1
            return None

    def leave(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    def close(self, reason: str, timeout: float) -> int:
        """Stop admitting; wait up to ``timeout`` for the requests in flight. Returns how many remain."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self.reason = reason
            while self._in_flight > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self._in_flight

    def open(self) -> None:
        with self._cond:
            self.reason = None

    @property
    def in_flight(self) -> int:
        return self._in_flight


class GateMiddleware:
    """ASGI middleware: requests outside ``open_prefixes`` pass the gate, or get 503 "recovering"."""

    def __init__(self, app: ASGIApp, gate: RequestGate, open_prefixes: Sequence[str], name: str) -> None:
        self.app = app
        self.gate = gate
        self.open_prefixes = tuple(open_prefixes)
        self.name = name

    def _open(self, path: str) -> bool:
        return any(path == prefix or path.startswith(prefix.rstrip("/") + "/") for prefix in self.open_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._open(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        reason = self.gate.enter()
        if reason is not None:
            response = JSONResponse(
                {
                    "error": f"node {self.name} is recovering: {reason}",
                    "kind": "Recovering",
                    "status": "recovering",
                    "hint": "a recovery holds the data dir; retry shortly (see GET /health)",
                },
                status_code=503,
                headers={"Retry-After": "2"},
            )
            await response(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.gate.leave()


class NodeControl:
    """What an extension may do to the node it is mounted on: drain and release the data dir, reopen."""

    def __init__(self, node: Node, gate: RequestGate) -> None:
        self.node = node
        self.gate = gate
        self._lock = threading.Lock()

    @property
    def released(self) -> bool:
        return self.node.recovering is not None

    def release(self, reason: str, *, drain_seconds: float = 10.0) -> dict[str, Any]:
        """Drain (new requests 503, in-flight ones finish), then close the engine. Idempotent."""
        with self._lock:
            if self.released:
                return {"released": False, "reason": self.node.recovering}
            clock = time.monotonic()
            left = self.gate.close(reason, drain_seconds)
            try:
                self.node.release_data_dir(reason)
            except BaseException:
                self.gate.open()
                raise
            return {"released": True, "drain_seconds": round(time.monotonic() - clock, 3), "requests_cut_off": left}

    def reopen(self) -> dict[str, Any]:
        """Open the engine again (WAL replay), then admit requests. Raises when it does not open."""
        with self._lock:
            info = self.node.reopen_data_dir()
            self.gate.open()
            return info


class NodeExtension(Protocol):
    """Routes mounted beside the node's own (their paths stay open while the node drains)."""

    prefix: str
    routes: Sequence[BaseRoute]

    def close(self) -> None: ...


ExtensionFactory = Callable[[NodeControl], NodeExtension]
