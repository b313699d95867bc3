"""The node's health routes: what monitoring, load balancers and the console ask.

    GET  /health             200 healthy | degraded | split-brain; 503 corrupt | recovering | fenced
                             (``status``, ``reason``, ``corruption``, ``scrub``, role, epoch, stats)
    GET  /ready              the write + read probe; 503 when corrupt or recovering, whatever it says
    GET  /primary            200 on a primary that is not fenced, recovering or split-brained; else 503
    GET  /replica[?lag=16MB] 200 on a standby streaming from its upstream (within the lag ceiling)

All stay open (no token): HAProxy and Prometheus need no secret. HEAD and OPTIONS are answered
like GET (HAProxy's ``option httpchk`` sends OPTIONS by default). The states and their HTTP
status are explained in ``health.py`` and ``vitals.py``.
"""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engines.errors import EngineError
from engines.node.node import Node

__all__ = ["health_routes"]

_METHODS = ["GET", "HEAD", "OPTIONS"]


def health_routes(node: Node) -> list[Route]:
    async def health(request: Request) -> Response:
        try:
            ok, body = await run_in_threadpool(node.health)
        except EngineError as exc:
            return JSONResponse(
                {
                    "status": "unhealthy",
                    "error": str(exc),
                    "role": node.role,
                    "epoch": node.epoch,
                    "timestamp": time.time(),
                },
                status_code=503,
            )
        return JSONResponse(body, status_code=200 if ok else 503)

    async def ready(request: Request) -> Response:
        try:
            body = await run_in_threadpool(node.ready_probe)
        except EngineError as exc:
            return JSONResponse({"ready": False, "error": str(exc), "role": node.role}, status_code=503)
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    async def primary(request: Request) -> Response:
        code, body = await run_in_threadpool(node.vitals.primary)
        return JSONResponse(body, status_code=code)

    async def replica(request: Request) -> Response:
        code, body = await run_in_threadpool(node.vitals.replica, request.query_params.get("lag"))
        return JSONResponse(body, status_code=code)

    return [
        Route("/health", health, methods=_METHODS),
        Route("/ready", ready, methods=_METHODS),
        Route("/primary", primary, methods=_METHODS),
        Route("/replica", replica, methods=_METHODS),
    ]
