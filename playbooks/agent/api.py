"""The agent's HTTP routes (``protocol.py`` documents them), thin shells over ``service.Agent``.

Every route needs the node's bearer token when the node has one (``--token-file``); a node
without a token serves them on loopback only, as ``node serve`` refuses any other address
without ``--allow-remote``. Blocking work (the runner, the journal) runs in the thread pool.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from engines.errors import DrconsoleError, InvalidArgumentError, LockedError, NotFoundError, SafetyRefusal
from engines.node.config import is_loopback
from engines.node.errors import NodeAuthError
from playbooks.agent.protocol import (
    ACTOR_HEADER,
    DEFAULT_EVENT_WAIT,
    MAX_EVENT_WAIT,
    PREFIX,
    StartRequest,
    actor_from_header,
)
from playbooks.audit_peers import PeerAnchorStore, anchor_routes
from playbooks.errors import PlaybookInputError, PlaybookRefusal, UnknownPlaybookError
from playbooks.state import Actor

if TYPE_CHECKING:
    from playbooks.agent.service import Agent

__all__ = ["agent_routes"]

_MAX_BODY = 256 * 1024
_POLL = 0.05
Handler = Callable[[Request], Awaitable[Response]]


def _status(exc: DrconsoleError) -> int:
    if isinstance(exc, NodeAuthError):
        return 401
    if isinstance(exc, UnknownPlaybookError):
        return 404
    if isinstance(exc, (InvalidArgumentError, PlaybookInputError)):
        return 400
    if isinstance(exc, (LockedError, SafetyRefusal, PlaybookRefusal)):
        return 409
    if isinstance(exc, NotFoundError):
        return 404
    return 500


def _error(exc: DrconsoleError) -> JSONResponse:
    return JSONResponse(
        {"error": exc.message, "hint": exc.hint, "kind": type(exc).__name__, "exit_code": int(exc.exit_code)},
        status_code=_status(exc),
    )


def agent_routes(agent: Agent) -> list[BaseRoute]:
    token = agent.node.config.token

    def check(request: Request) -> Actor:
        peer = request.client.host if request.client else None
        if token is None and not is_loopback(peer or ""):
            raise NodeAuthError(
                f"this node has no token, so its playbook agent answers loopback only (not {peer})",
                hint="start the node with --token-file F and give clients token_file = F",
            )
        if token is not None:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
                raise NodeAuthError(
                    "the playbook agent needs the node's bearer token",
                    hint="send 'Authorization: Bearer <token>' ([[node]] token_file)",
                )
        return actor_from_header(request.headers.get(ACTOR_HEADER), peer)

    async def body_of(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > _MAX_BODY:
            raise InvalidArgumentError(f"request body over {_MAX_BODY} bytes")
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise InvalidArgumentError("the request body is not JSON") from None
        if not isinstance(body, dict):
            raise InvalidArgumentError("the request body must be a JSON object")
        return body

    def start_request(body: dict[str, Any]) -> StartRequest:
        try:
            return StartRequest.from_json(body)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"bad run request: {exc}") from exc

    def guarded(handler: Handler) -> Handler:
        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except DrconsoleError as exc:
                return _error(exc)

        return route

    async def playbooks(request: Request) -> Response:
        check(request)
        library = agent.library
        rows = [library.playbooks[key].summary_json() for key in sorted(library.playbooks)]
        return JSONResponse({"playbooks": rows, "node": agent.node.config.name})

    async def runs(request: Request) -> Response:
        actor = check(request)
        if request.method == "GET":
            return JSONResponse({"runs": await run_in_threadpool(agent.list)})
        started = start_request(await body_of(request))
        if not started.playbook:
            raise InvalidArgumentError('a run needs {"playbook": ID}')
        answer = await run_in_threadpool(agent.start, started, actor)
        return JSONResponse(answer, status_code=200 if "result" in answer else 202)

    async def one(request: Request) -> Response:
        check(request)
        return JSONResponse(await run_in_threadpool(agent.info, request.path_params["run_id"]))

    async def confirm(request: Request) -> Response:
        actor = check(request)
        body = await body_of(request)
        step = body.get("step")
        if not isinstance(step, str) or not step:
            raise InvalidArgumentError('confirm needs {"step": ID, "typed": NODE_NAME} or {"step", "decline": true}')
        typed = None if body.get("decline") else str(body.get("typed", ""))
        return JSONResponse(await run_in_threadpool(agent.confirm, request.path_params["run_id"], step, typed, actor))

    async def cancel(request: Request) -> Response:
        actor = check(request)
        return JSONResponse(await run_in_threadpool(agent.cancel, request.path_params["run_id"], actor))

    async def resume(request: Request) -> Response:
        actor = check(request)
        resumed = start_request(await body_of(request))
        answer = await run_in_threadpool(agent.resume, request.path_params["run_id"], resumed, actor)
        return JSONResponse(answer, status_code=202)

    async def events(request: Request) -> Response:
        check(request)
        run_id = request.path_params["run_id"]
        try:
            after = int(request.query_params.get("after", "0"))
            wait = min(MAX_EVENT_WAIT, max(0.0, float(request.query_params.get("wait", str(DEFAULT_EVENT_WAIT)))))
        except ValueError:
            raise InvalidArgumentError("after is an integer, wait a number of seconds") from None
        run, log = await run_in_threadpool(agent.find, run_id)

        async def stream() -> AsyncIterator[bytes]:
            seq, deadline = after, time.monotonic() + wait
            while True:
                for line in log.after(seq):
                    seq = int(line["seq"])
                    yield (json.dumps(line, default=str) + "\n").encode()
                live = run is not None and run.live
                if not live and not log.after(seq):
                    status = run.status if run is not None else "over"
                    yield (json.dumps({"end": True, "live": False, "status": status}) + "\n").encode()
                    return
                if time.monotonic() >= deadline:
                    yield (
                        json.dumps({"end": True, "live": True, "status": run.status if run else "?"}) + "\n"
                    ).encode()
                    return
                await asyncio.sleep(_POLL)

        return StreamingResponse(
            stream(),
            media_type="application/x-ndjson",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    base = PREFIX
    return [
        Route(f"{base}/playbooks", guarded(playbooks), methods=["GET"]),
        Route(f"{base}/runs", guarded(runs), methods=["GET", "POST"]),
        Route(f"{base}/runs/{{run_id}}", guarded(one), methods=["GET"]),
        Route(f"{base}/runs/{{run_id}}/events", guarded(events), methods=["GET"]),
        Route(f"{base}/runs/{{run_id}}/confirm", guarded(confirm), methods=["POST"]),
        Route(f"{base}/runs/{{run_id}}/cancel", guarded(cancel), methods=["POST"]),
        Route(f"{base}/runs/{{run_id}}/resume", guarded(resume), methods=["POST"]),
        *anchor_routes(PeerAnchorStore(agent.state.root / "peer-anchors"), check, guarded),  # peers' audit heads
    ]
