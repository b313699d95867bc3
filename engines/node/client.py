"""The node client: what the CLI, the console and the playbooks use to talk to a node.

Every ``httpx`` failure is mapped to the node error hierarchy (``errors.py``) with
``raise ... from exc``: a connection or protocol failure is ``NodeUnreachableError`` (exit 3),
409 is ``NodeRefusedError`` (exit 4), 401/403 ``NodeAuthError`` (exit 4), 400/413
``NodeBadRequestError`` (exit 2), and anything else unexpected ``NodeError`` (exit 1).

A ``read_only=True`` client has no write capability at all: ``put``, ``delete`` and every admin
action raise ``ReadOnlyError`` before anything is sent (DESIGN.md, Safety 5: the dashboard and
``--read-only`` refuse at the action layer).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from engines.errors import ReadOnlyError
from engines.node.admin_audit import ACTOR_HEADER
from engines.node.errors import (
    NodeAuthError,
    NodeBadRequestError,
    NodeError,
    NodeRefusedError,
    NodeUnreachableError,
)
from engines.node.tokens import booked_token

__all__ = ["NodeClient", "read_token_file", "key_path", "send", "json_object"]


def read_token_file(path: str | Path) -> str:
    """The token in ``path`` (surrounding whitespace stripped).

    Raises:
        NodeBadRequestError: the file is missing, unreadable or empty.
    """
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise NodeBadRequestError(
            f"cannot read the token file {path}: {exc}", hint="pass a readable file holding the bearer token"
        ) from exc
    if not token:
        raise NodeBadRequestError(f"token file {path} is empty", hint="write the bearer token into it")
    return token


def key_path(key: bytes) -> str:
    return "/kv/" + quote(key, safe="")


class NodeClient:
    """A synchronous client of one node's HTTP API."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        read_only: bool = False,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        actor: str | None = None,
    ) -> None:
        """``actor``: who acts, as the ``x-drconsole-actor`` header (the node's audit log records it)."""
        self.url = url.rstrip("/")
        self.read_only = read_only
        if token is None:  # a group's node actions name URLs only (engines/node/tokens.py)
            token = booked_token(self.url)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if actor:
            headers[ACTOR_HEADER] = actor
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reads
    def health(self) -> dict[str, Any]:
        """The ``/health`` body, also when the node answers 503 (fenced, unhealthy)."""
        return self._json("GET", "/health", ok=(200, 503))

    def ready(self) -> dict[str, Any]:
        return self._json("GET", "/ready", ok=(200, 503))

    def replication(self) -> dict[str, Any]:
        return self._json("GET", "/replication")

    def peers(self) -> dict[str, Any]:
        return self._json("GET", "/peers")

    def metrics_text(self) -> str:
        return self._request("GET", "/metrics").text

    def get(self, key: bytes) -> bytes | None:
        response = self._request("GET", key_path(key), ok=(200, 404))
        return None if response.status_code == 404 else response.content

    # ------------------------------------------------------------------ writes
    def put(self, key: bytes, value: bytes) -> int:
        """Store ``value``; returns the LSN once the node made it durable."""
        self._refuse_if_read_only(f"put {key!r}")
        return int(self._json("PUT", key_path(key), content=value)["lsn"])

    def delete(self, key: bytes) -> int:
        self._refuse_if_read_only(f"delete {key!r}")
        return int(self._json("DELETE", key_path(key))["lsn"])

    def admin(self, action: str, **params: Any) -> dict[str, Any]:
        self._refuse_if_read_only(f"admin action {action}")
        return self._json("POST", f"/admin/{action}", json=params)

    def promote(self, hold_writes_seconds: float | None = None) -> dict[str, Any]:
        if hold_writes_seconds:
            return self.admin("promote", hold_writes_seconds=hold_writes_seconds)
        return self.admin("promote")

    def fence(self, reason: str, epoch: int | None = None, *, force: bool = False) -> dict[str, Any]:
        """Fence the node; a live primary needs a newer ``epoch`` or ``force`` (the caller confirmed)."""
        return self.admin("fence", reason=reason, epoch=epoch, force=force)

    def demote(self, follow: str) -> dict[str, Any]:
        return self.admin("demote", follow=follow)

    # ------------------------------------------------------------------ plumbing
    def _refuse_if_read_only(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyError(
                f"refused to {what} on {self.url}: this client is read-only",
                hint="read-only mode (dashboard, --read-only) has no write capability",
            )

    def _json(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any) -> dict[str, Any]:
        response = self._request(method, path, ok=ok, **kwargs)
        return json_object(response, self.url, path, hint="is this a drconsole node?")

    def _request(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any) -> httpx.Response:
        return send(self._http, self.url, method, path, ok=ok, status_error=_status_error, **kwargs)


def send(
    http: httpx.Client,
    url: str,
    method: str,
    path: str,
    *,
    ok: tuple[int, ...],
    status_error: Callable[[str, str, str, httpx.Response], Exception],
    **kwargs: Any,
) -> httpx.Response:
    """One request to a node (its data API or its agent): transport failures become NodeUnreachableError
    with what to check, an answer outside ``ok`` becomes ``status_error``'s exception."""
    try:
        response = http.request(method, path, **kwargs)
    except httpx.TimeoutException as exc:
        raise NodeUnreachableError(
            f"node {url} did not answer {method} {path} in time",
            hint="check that the node is up and not overloaded",
        ) from exc
    except httpx.TransportError as exc:
        raise NodeUnreachableError(
            f"node {url} is unreachable: {exc or type(exc).__name__}",
            hint="check the URL and that `drconsole node serve` runs there",
        ) from exc
    except httpx.HTTPError as exc:
        raise NodeError(f"request to {url}{path} failed: {exc}") from exc
    if response.status_code in ok:
        return response
    raise status_error(url, method, path, response)


def json_object(response: httpx.Response, url: str, path: str, *, hint: str) -> dict[str, Any]:
    """The JSON object a node answered (``hint``: what to check when it is not one)."""
    try:
        body = response.json()
    except ValueError as exc:
        raise NodeError(f"{url}{path} answered with something that is not JSON", hint=hint) from exc
    if not isinstance(body, dict):
        raise NodeError(f"{url}{path} answered with a JSON {type(body).__name__}, not an object")
    return body


def _status_error(url: str, method: str, path: str, response: httpx.Response) -> NodeError:
    try:
        body = response.json()
        message = body.get("error") or response.reason_phrase
        hint = body.get("hint")
    except (ValueError, AttributeError):
        message, hint = response.text[:200] or response.reason_phrase, None
    where = f"{method} {url}{path}: HTTP {response.status_code}: {message}"
    status = response.status_code
    if status in (401, 403):
        return NodeAuthError(where, hint=hint or "pass the node's token with --token-file")
    if status == 409:
        return NodeRefusedError(where, hint=hint)
    if status in (400, 404, 413, 422):
        return NodeBadRequestError(where, hint=hint)
    if status == 502:
        return NodeUnreachableError(where, hint=hint or "the node could not reach the node it had to ask")
    if status == 503:
        return NodeUnreachableError(where, hint=hint or "the node is up but cannot serve")
    return NodeError(where, hint=hint)
