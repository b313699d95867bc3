"""A node's audit heads kept by its peers: the anchor a root on one host cannot reach.

Each append to a node's audit log (its admin calls, its agent's runs) sends the new head, MACed
with the node's audit key, to every ``--peer`` (``PeerAnchorSender``, a background thread that
sends only the newest head: a slow peer never holds the node up). A peer keeps the highest head
it was given per log (``PeerAnchorStore``, in its state dir) and serves it back under its agent's
prefix, behind its token:

    PUT /agent/audit-anchors/{log_id}   {seq, hash, mac, node}  keep it when newer
    GET /agent/audit-anchors/{log_id}   the head kept, 404 when none

A peer cannot check the MAC (it has not the key); ``drconsole audit verify --peer URL`` does,
on the node, and a head that fails it is ignored.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engines.errors import InvalidArgumentError, NotFoundError
from engines.fsutil import atomic_write_text
from playbooks.audit_anchor import Head, head_mac, log_id
from playbooks.audit_key import AuditKey

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from playbooks.audit import AuditLog

__all__ = ["PeerAnchorStore", "PeerAnchorSender", "anchor_routes", "peer_heads", "ANCHOR_PATH"]

ANCHOR_PATH = "/agent/audit-anchors"
_LOG_ID = re.compile(r"^[0-9a-f]{16}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")


class PeerAnchorStore:
    """The heads other nodes sent here, one file per log, the highest sequence kept."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    def _path(self, identity: str) -> Path:
        if not _LOG_ID.match(identity):
            raise InvalidArgumentError("a log id is 16 hex digits")
        return self.root / f"{identity}.json"

    def read(self, identity: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self._path(identity).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def keep(self, identity: str, body: dict[str, Any]) -> dict[str, Any]:
        seq, digest, mac = body.get("seq"), body.get("hash"), body.get("mac")
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 < seq < 2**53:
            raise InvalidArgumentError("seq must be a positive integer")
        if not isinstance(digest, str) or not _HEX.match(digest) or not isinstance(mac, str) or not _HEX.match(mac):
            raise InvalidArgumentError("hash and mac must be 64 hex digits")
        record = {"seq": seq, "hash": digest, "mac": mac, "node": str(body.get("node", ""))[:128]}
        with self._lock:
            known = self.read(identity)
            if known is not None and int(known.get("seq", 0)) >= seq:
                return {"kept": False, "seq": known.get("seq")}  # never backwards: a replayed head changes nothing
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write_text(self._path(identity), json.dumps(record) + "\n")
        return {"kept": True, "seq": seq}


def anchor_routes(
    store: PeerAnchorStore,
    check: Callable[[Request], object],
    guarded: Callable[[Callable[[Request], Awaitable[Response]]], Callable[[Request], Awaitable[Response]]],
) -> list[BaseRoute]:
    """The two routes, behind ``check`` (the agent's token check)."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def anchor(request: Request) -> Response:
        check(request)
        identity = request.path_params["log_id"]
        if request.method == "GET":
            found = await run_in_threadpool(store.read, identity)
            if found is None:
                raise NotFoundError(f"no audit head of log {identity} here")
            return JSONResponse(found)
        raw = await request.body()
        if len(raw) > 4096:
            raise InvalidArgumentError("an audit head is a small JSON object")
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            raise InvalidArgumentError("the body is not JSON") from None
        if not isinstance(body, dict):
            raise InvalidArgumentError("the body must be a JSON object")
        return JSONResponse(await run_in_threadpool(store.keep, identity, body))

    return [Route(f"{ANCHOR_PATH}/{{log_id}}", guarded(anchor), methods=["GET", "PUT"])]


class PeerAnchorSender:
    """Sends the newest head of one log to every peer, off the caller's thread."""

    def __init__(self, peers: list[str], *, token: str | None, node: str, timeout: float = 2.0) -> None:
        self.peers = [peer.rstrip("/") for peer in peers]
        self.token = token
        self.node = node
        self.timeout = timeout
        self._pending: tuple[str, dict[str, Any]] | None = None
        self._wake = threading.Condition()
        self._closed = False
        self.sent: dict[str, int] = {}  # peer -> highest seq it accepted (for tests and status)
        self._thread = threading.Thread(target=self._run, name="audit-peer-anchor", daemon=True)
        self._thread.start()

    def __call__(self, key: AuditKey, log_path: Path, head: Head) -> None:
        identity = log_id(log_path)
        body = {"seq": head.seq, "hash": head.hash, "mac": head_mac(key, identity, head), "node": self.node}
        with self._wake:
            self._pending = (identity, body)
            self._wake.notify()

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=self.timeout * max(1, len(self.peers)) + 1)

    def _run(self) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        with httpx.Client(timeout=self.timeout, headers=headers) as client:
            while True:
                with self._wake:
                    while self._pending is None and not self._closed:
                        self._wake.wait()
                    if self._pending is None:
                        return
                    identity, body = self._pending
                    self._pending = None
                for peer in self.peers:
                    try:
                        answer = client.put(f"{peer}{ANCHOR_PATH}/{identity}", json=body)
                        if answer.status_code == 200:
                            self.sent[peer] = max(self.sent.get(peer, 0), int(body["seq"]))
                    except (httpx.HTTPError, ValueError):
                        continue  # the peer is down: the next head goes to it when it is back


def peer_heads(log: AuditLog, peers: list[str], *, token_file: Path | None = None) -> list[tuple[str, Head]]:
    """The heads ``peers`` hold for ``log``, each checked against the log's key (others are dropped).

    Raises:
        NodeUnreachableError / NodeError: a peer cannot be asked.
    """
    import httpx

    from engines.node.client import read_token_file
    from engines.node.errors import NodeError, NodeUnreachableError

    key = AuditKey.load(log.key_path)
    if key is None:
        return []
    identity = log_id(log.path)
    token = read_token_file(token_file) if token_file else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    found = []
    with httpx.Client(timeout=5.0, headers=headers) as client:
        for peer in peers:
            url = f"{peer.rstrip('/')}{ANCHOR_PATH}/{identity}"
            try:
                answer = client.get(url)
            except httpx.HTTPError as exc:
                raise NodeUnreachableError(f"peer {peer} is unreachable: {exc or type(exc).__name__}") from exc
            if answer.status_code == 404:
                continue
            if answer.status_code != 200:
                raise NodeError(f"GET {url}: HTTP {answer.status_code}", hint="pass the peer's --token-file")
            try:
                data = answer.json()
                head = Head(int(data["seq"]), str(data["hash"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise NodeError(f"GET {url} answered something that is not an audit head") from exc
            if data.get("mac") == head_mac(key, identity, head):
                found.append((f"peer {peer}", head))
    return found
