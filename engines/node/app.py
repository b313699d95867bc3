"""The node's HTTP API (Starlette); every route is a thin shell over ``Node``.

    GET  /health                200 healthy|degraded|split-brain, 503 corrupt|recovering|fenced:
                                status, reason, corruption, scrub, backend, role, epoch, stats
    GET  /ready                 write + read probe of a reserved key (read probe on a standby);
                                503 when corrupt or recovering
    GET  /primary, /replica     200 only in that role (Patroni's convention, for HAProxy)
    GET  /metrics               Prometheus text format
    GET  /replication           role, epoch, upstream, applied/primary LSN, lag, split_brain
    GET  /peers                 each peer's reachability, last contact, role, epoch, primary
    GET|PUT|DELETE /kv/{key}    the key URL-encoded (any bytes); the body is the raw value
    GET  /wal?from_lsn=N&wait=S&epoch=E&name=X     WAL frames for standbys (long-poll); bearer
                                token when configured (a standby sends its own --token-file)
    POST /admin/{action}        flush, compact, checkpoint, reduce-cache, promote, fence, demote,
                                rejoin, backup, wal-archive, verify, scrub; bearer token when configured

/health, /ready, /primary, /replica, /metrics, /replication and /peers stay open (monitoring
needs no secret). ``/kv`` is open unless the node has a read token (``--read-token-file``): then
every ``/kv`` request needs it or the admin token. ``/wal`` takes only the admin token: a standby
reports its epoch there, and a higher one fences the primary. Request bodies share one memory
budget (``body_budget.py``, ``--max-body-memory``): past it 503 at once. The health routes and states
live in ``health_routes.py`` and ``vitals.py``.

Extensions (``build_app(node, extensions=[factory])``, ``drain.py``) add routes under their own
prefix and may drain the node: while it is released every route but the health routes and the
extensions' answers 503 ``{"status": "recovering"}``, and ``/health`` says ``recovering``.

Admin actions (POST, JSON object body, answer ``{"action", "ok": true, ...}``):

    promote {"hold_writes_seconds"?}   standby/fenced -> primary in epoch+1: {role, epoch, changed, ...};
                                 with a hold, client writes answer 503 until release-writes or the
                                 deadline (the handover of ``handover.py``: the salvage goes first)
    apply {"rows": [...]}        compare-and-set rows (base64 key, value, expect): the salvage of an
                                 old primary's tail; {rows: [{outcome, current}], applied, lsn}
    release-writes               end a hold: client writes are taken again
    fence {"reason"?, "epoch"?, "force"?}   refuse writes; a live primary is fenced only for a newer
                                 epoch (or with force); epochs are 0..2**53-1, and one more than
                                 1000 past the highest seen needs force

Every body is checked strictly (``admin_bodies.py``): exact JSON types, no unknown fields.
    demote {"follow": URL}       become a standby of URL as is; the upstream refuses it (409 ->
                                 follower_state "refused") when its records diverged
    rejoin {"primary": URL, "dry_run"?: bool}   (or ``?primary=URL``) the reference's "rebuild
                                 primary from standby": asks URL for its timeline history and
                                 finds the fork LSN. Not diverged: same as demote. Diverged (this
                                 node holds records past the fork): exports them to
                                 ``<parent>/.quarantine/diverged-<epoch>-<ts>/<name>.diverged.jsonl``,
                                 moves the data dir beside it, and follows URL from an empty data
                                 dir (reseeding from a backup when one is at hand). Answer:
                                 {role, epoch, plan: {fork_lsn, diverged, diverged_records, ...},
                                 diverged, quarantine?, export?: {path, records, missing, complete}}.
                                 dry_run: only {plan}, nothing changed. 409 when URL is not a
                                 primary, or no fork point exists (split brain, newer epoch here).
    backup {"repo"?, "incremental"?}   a hot backup of the open engine into repo (default: the
                                 node's --backup-repo, else --archive): the backup's JSON
    flush | compact | checkpoint {"dest"} | reduce-cache {"cache_bytes"} | wal-archive {"repo"?}
    verify                       a full verify of the open engine: {verify, cleared, status}; a clean
                                 one clears the corrupt state, problems make the node corrupt
    scrub {"rate"?}              one scrub pass now (bytes/s, default the node's --scrub-rate):
                                 {pass: {bytes_read, checked, problems, ...}, status}

``GET /replication`` also carries ``reseed`` (the last reseed from a backup: state
reseeding|reseeded|failed, reason, backup_id, lsn, quarantine, duration_seconds), ``rejoin`` (the
last rejoin), ``backup_repo`` (advertised to standbys), and for each standby the primary has seen
``lag_records`` and ``lag_seconds`` (since the commit of the first record it lacks), which keep
growing while that standby is stopped.

Errors are JSON ``{"error", "hint", "kind"}`` with the status of their kind (400 bad input,
401 token, 404, 409 refused: standby or fenced, 410 WAL recycled, 413 too large, 500 corruption
(the key's block is damaged; other keys serve), 502 a node this one had to ask is unreachable,
503 recovering (a playbook holds the data dir), 507 disk full).
Engine calls block (fsync), so they run in the thread pool, never on the event loop.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from engines.backup import attach_archiver, create_backup
from engines.backup.location import is_remote, location_text
from engines.errors import (
    ClosedError,
    CorruptionError,
    DiskFullError,
    EngineError,
    FencedError,
    InvalidArgumentError,
    NotFoundError,
    ReadOnlyError,
    SafetyRefusal,
)
from engines.node.admin_audit import ACTOR_HEADER, AdminAudit, AdminCall
from engines.node.admin_bodies import (
    AdminBody,
    ApplyBody,
    BackupBody,
    CheckpointBody,
    DemoteBody,
    FenceBody,
    PromoteBody,
    ReduceCacheBody,
    RejoinBody,
    ScrubBody,
    WalArchiveBody,
    admin_body,
    parse_admin_body,
)
from engines.node.body_budget import BodyBudget, BodyTimeout, BodyTooLarge, BudgetExceeded
from engines.node.drain import ExtensionFactory, GateMiddleware, NodeControl, RequestGate
from engines.node.errors import NodeAuthError, NodeBadRequestError, NodeRefusedError, NodeUnreachableError
from engines.node.handover import HandoverError
from engines.node.health_routes import health_routes
from engines.node.metrics import CONTENT_TYPE
from engines.node.node import Node
from engines.node.state import MAX_EPOCH, plausible_epoch
from engines.node.vitals import NodeRecoveringError
from engines.node.wal_tail import WalGoneError
from engines.node.wire import encode_frames
from engines.wal import list_segments

__all__ = ["build_app", "ADMIN_ACTIONS"]

ADMIN_ACTIONS = (
    "flush",
    "compact",
    "checkpoint",
    "reduce-cache",
    "promote",
    "fence",
    "demote",
    "rejoin",
    "backup",
    "wal-archive",
    "verify",
    "scrub",
    "apply",
    "release-writes",
)
_MAX_ADMIN_BODY = 64 * 1024
_MAX_APPLY_BODY = 48 * 2**20  # a salvage batch: base64 rows, one value of up to 16 MiB among them
EPOCH_LEAP = 1000  # an epoch this far past the highest seen is a typo or an attack, not a promotion
_MAX_WAIT = 30.0

_STATUS: list[tuple[type[EngineError], int]] = [
    (NodeRecoveringError, 503),
    (HandoverError, 503),
    (NodeAuthError, 401),
    (NodeBadRequestError, 400),
    (InvalidArgumentError, 400),
    (NodeRefusedError, 409),
    (NodeUnreachableError, 502),  # another node this one had to ask (rejoin's primary) did not answer
    (FencedError, 409),
    (ReadOnlyError, 409),
    (SafetyRefusal, 409),
    (NotFoundError, 404),
    (DiskFullError, 507),
    (ClosedError, 503),
    (CorruptionError, 500),
]


def _error(status: int, message: str, hint: str | None = None, kind: str = "error", **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, "hint": hint, "kind": kind, **extra}, status_code=status)


def _engine_error(exc: EngineError) -> JSONResponse:
    status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)
    return _error(status, exc.message, exc.hint, type(exc).__name__)


def _summary(result: dict[str, Any]) -> str:
    """A short line of what an admin call answered, for its audit entry."""
    fields = [
        f"{name}={result[name]}"
        for name in ("role", "epoch", "backup_id", "dest", "lsn", "archived", "status")
        if name in result and result[name] not in (None, "", [])
    ]
    return ", ".join(fields)[:300]


def build_app(node: Node, extensions: Sequence[ExtensionFactory] = (), audit: AdminAudit | None = None) -> Starlette:
    config = node.config
    token = config.token
    gate = RequestGate()
    mounted = [factory(NodeControl(node, gate)) for factory in extensions]

    def presented(request: Request, *accepted: str | None) -> bool:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and any(
            candidate is not None and hmac.compare_digest(given.strip().encode(), candidate.encode())
            for candidate in accepted
        )

    def check_token(request: Request, what: str = "admin endpoints") -> None:
        if token is not None and not presented(request, token):
            raise NodeAuthError(
                f"{what} need the node's bearer token",
                hint="send 'Authorization: Bearer <token>' (drconsole: --token-file)",
            )

    def check_data_token(request: Request) -> None:
        """With --read-token-file, /kv (reads and writes) needs that token or the admin one."""
        if config.read_token is not None and not presented(request, config.read_token, token):
            raise NodeAuthError(
                "/kv needs a bearer token on this node (it was started with --read-token-file)",
                hint="send 'Authorization: Bearer <read token>' (or the admin token)",
            )

    def key_of(request: Request) -> bytes:
        raw = request.scope.get("raw_path") or request.scope["path"].encode()
        raw = raw.split(b"?", 1)[0]
        prefix = b"/kv/"
        if not raw.startswith(prefix):
            raise NodeBadRequestError("malformed key path")
        key = unquote_to_bytes(raw[len(prefix) :])
        if not key:
            raise NodeBadRequestError("empty key", hint="PUT /kv/<url-encoded key>")
        if len(key) > config.max_key_bytes:
            raise BodyTooLarge(f"key of {len(key)} bytes exceeds the {config.max_key_bytes}-byte limit")
        return key

    budget = BodyBudget(config.max_body_memory, config.body_idle_seconds)

    read_body = budget.body

    async def metrics(request: Request) -> Response:
        text = await run_in_threadpool(node.metrics.render, config.data_dir, node.metrics_values)
        return Response(text, media_type=CONTENT_TYPE)

    async def replication(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(node.replication))

    async def peers(request: Request) -> Response:
        if node.peers is None:
            return JSONResponse(
                {
                    "peers": [],
                    "isolated": False,
                    "partition": False,
                    "primaries_named": [],
                    "split_brain": False,
                    "note": "no --peer configured",
                }
            )
        return JSONResponse(node.peers.report())

    async def kv(request: Request) -> Response:
        check_data_token(request)
        key = key_of(request)
        if request.method == "GET":
            try:
                value = await run_in_threadpool(node.get, key)
            except NodeRecoveringError:
                raise  # a refusal while a playbook holds the data dir, not a failed read
            except EngineError:
                node.metrics.errors.labels("get").inc()
                raise
            if value is None:
                return _error(404, f"key {key!r} not found", kind="NotFound")
            return Response(value, media_type="application/octet-stream")
        operation = "put" if request.method == "PUT" else "delete"
        try:
            if request.method == "PUT":
                node.check_client_write(key)  # refuse before reading a body we would not keep
                async with read_body(request, config.max_value_bytes) as value:
                    lsn = await run_in_threadpool(node.put, key, value)
            else:
                lsn = await run_in_threadpool(node.delete, key)
        except (NodeRefusedError, FencedError, NodeRecoveringError, HandoverError):
            raise
        except EngineError:
            node.metrics.errors.labels(operation).inc()
            raise
        return JSONResponse({"lsn": lsn, "durable": True, "epoch": node.epoch})

    async def wal(request: Request) -> Response:
        check_token(request, "WAL shipping (/wal) and admin endpoints")  # the log is every value ever written
        node.vitals.check_serving()  # a playbook may be moving the WAL under us
        params = request.query_params
        try:
            from_lsn = int(params.get("from_lsn", "1"))
            wait = min(_MAX_WAIT, max(0.0, float(params.get("wait", "0"))))
            epoch = int(params.get("epoch", "0"))
            max_bytes = min(16 << 20, max(4096, int(params.get("max_bytes", str(4 << 20)))))
        except ValueError:
            raise NodeBadRequestError("from_lsn, epoch and max_bytes are integers, wait a number") from None
        if from_lsn < 1:
            raise NodeBadRequestError("from_lsn starts at 1")
        if plausible_epoch(epoch) is None:
            raise NodeBadRequestError(f"epoch must be 0..{MAX_EPOCH}")
        name = params.get("name", request.client.host if request.client else "?")
        headers = lambda: {
            "x-drconsole-epoch": str(node.epoch),
            "x-drconsole-role": node.role,  # noqa: E731
            "x-drconsole-history": json.dumps([e.model_dump() for e in node.state.history]),
        }
        await run_in_threadpool(node.check_follower, from_lsn, epoch, name)
        node.note_standby(name, from_lsn - 1, request.client.host if request.client else "?")
        committed = node.committed_lsn
        if committed < from_lsn and wait > 0:
            committed = await run_in_threadpool(node.wait_for_commit, from_lsn - 1, wait)
        if committed < from_lsn:
            return Response(
                b"",
                media_type="application/octet-stream",
                headers={**headers(), "x-drconsole-last-lsn": str(committed), "x-drconsole-remaining-bytes": "0"},
            )
        try:
            batch = await run_in_threadpool(node.tail.read, from_lsn, committed, max_bytes=max_bytes)
        except WalGoneError as exc:
            repo = config.backup_source
            return JSONResponse(
                {
                    "error": str(exc),
                    "kind": "WalGone",
                    "oldest_lsn": exc.oldest,
                    "backup_repo": None if repo is None else location_text(repo),
                    "hint": "read the missing records from the WAL archive, or reseed from a backup",
                },
                status_code=410,
                headers=headers(),
            )
        return Response(
            encode_frames(batch.payloads),
            media_type="application/octet-stream",
            headers={
                **headers(),
                "x-drconsole-last-lsn": str(committed),
                "x-drconsole-remaining-bytes": str(batch.remaining_bytes),
            },
        )

    async def admin(request: Request) -> Response:
        check_token(request)
        action = request.path_params["action"]
        if action not in ADMIN_ACTIONS:
            return _error(404, f"unknown admin action {action!r}", hint=f"one of {', '.join(ADMIN_ACTIONS)}")
        async with read_body(request, _MAX_APPLY_BODY if action == "apply" else _MAX_ADMIN_BODY) as raw:
            body = admin_body(action, parse_admin_body(raw), dict(request.query_params))
        call = AdminCall(
            node=config.name,
            action=action,
            args=body.audit_args(),
            client=request.client.host if request.client else "?",
            actor=request.headers.get(ACTOR_HEADER),
        )
        if audit is not None:
            await run_in_threadpool(audit, call, "started")  # raises when it cannot write: nothing runs
        try:
            result = await run_in_threadpool(_run_admin, node, action, body)
        except EngineError as exc:
            node.metrics.errors.labels("admin").inc()
            if audit is not None:
                outcome = "refused" if exc.exit_code == 4 else "failed"
                await run_in_threadpool(audit, call, outcome, exc.message)
            raise
        if audit is not None:
            await run_in_threadpool(audit, call, "succeeded", _summary(result))
        return JSONResponse({"action": action, "ok": True, **result})

    async def on_engine_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, EngineError)
        return _engine_error(exc)

    async def on_too_large(request: Request, exc: Exception) -> Response:
        return _error(413, str(exc), hint="keys up to the key limit, values up to --max-value-bytes", kind="TooLarge")

    async def on_busy(request: Request, exc: Exception) -> Response:
        response = _error(
            503, str(exc), hint="retry shortly; the node holds a bounded amount of request bodies", kind="Busy"
        )
        response.headers["Retry-After"] = "1"
        response.headers["Connection"] = "close"  # the unread body is not worth waiting for
        return response

    async def on_stalled(request: Request, exc: Exception) -> Response:
        response = _error(408, str(exc), hint="send the body without pausing", kind="Timeout")
        response.headers["Connection"] = "close"
        return response

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(node.start)
        try:
            yield
        finally:
            for extension in mounted:
                await run_in_threadpool(extension.close)
            await run_in_threadpool(node.close)

    routes: list[BaseRoute] = [
        *health_routes(node),
        Route("/metrics", metrics),
        Route("/replication", replication),
        Route("/peers", peers),
        Route("/wal", wal),
        Route("/kv/{key:path}", kv, methods=["GET", "PUT", "DELETE"]),
        Route("/admin/{action}", admin, methods=["POST"]),
    ]
    for extension in mounted:
        routes.extend(extension.routes)
    health_paths = ["/health", "/ready", "/primary", "/replica"]  # they answer "recovering" themselves
    gated = Middleware(
        GateMiddleware, gate=gate, open_prefixes=[*health_paths, *(ext.prefix for ext in mounted)], name=config.name
    )
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[gated],
        exception_handlers={
            EngineError: on_engine_error,
            BodyTooLarge: on_too_large,
            BudgetExceeded: on_busy,
            BodyTimeout: on_stalled,
        },
    )


def _fence(node: Node, body: FenceBody) -> dict[str, Any]:
    """Fence, refusing what only a mistake or an attack sends unless ``force``.

    A live primary is fenced only for a newer epoch (a promotion elsewhere) or with ``force``; an
    epoch far past any this node has seen would be stored for good and outrun every real
    promotion, so it needs ``force`` too.
    """
    epoch, force = body.epoch, body.force
    live_primary = node.role == "primary"
    if live_primary and not force:
        if epoch is None:
            raise SafetyRefusal(
                "refusing to fence a live primary without the epoch of the primary that replaces it",
                hint='send {"epoch": N} of the new primary, or {"force": true} '
                "(`drconsole node fence URL --yes` forces)",
            )
        if epoch <= node.epoch:
            raise SafetyRefusal(
                f"refusing to fence: epoch {epoch} is not newer than this node's {node.epoch}",
                hint='send {"force": true} to fence anyway',
            )
    highest = max(node.epoch, node.state.known_epoch)
    if epoch is not None and epoch > highest + EPOCH_LEAP and not force:
        raise SafetyRefusal(
            f"refusing epoch {epoch}: it is more than {EPOCH_LEAP} past the highest this node has "
            f"seen ({highest}), and would be kept for good",
            hint='promotions add one each; send {"force": true} if it is real',
        )
    return node.fence(body.reason or "fenced by an operator", epoch)


def _run_admin(node: Node, action: str, body: AdminBody) -> dict[str, Any]:
    engine = node.engine
    if isinstance(body, PromoteBody):
        return node.promote(hold_writes_seconds=body.hold_writes_seconds)
    if isinstance(body, ApplyBody):
        return node.apply_salvage([row.model_dump() for row in body.rows])
    if action == "release-writes":
        return node.release_writes()
    if isinstance(body, FenceBody):
        return _fence(node, body)
    if isinstance(body, RejoinBody):
        return node.rejoin(body.primary, dry_run=body.dry_run)
    if isinstance(body, BackupBody):
        repo = body.repo or (location_text(node.config.backup_source) if node.config.backup_source else None)
        if repo is None or not (Path(repo).is_absolute() or is_remote(repo)):
            raise NodeBadRequestError(
                'backup needs {"repo": ABSOLUTE_PATH or sftp:// URL} or a node started with --backup-repo',
                hint="or --archive",
            )
        return create_backup(repo, engine=engine, incremental=body.incremental).to_json()
    if isinstance(body, DemoteBody):
        return node.demote(body.follow)
    if action == "flush":
        engine.flush()
        return {"last_lsn": engine.last_lsn, "durable_lsn": engine.durable_lsn}
    if action == "compact":
        started = time.perf_counter()
        with node.vitals.watch("compaction"):
            engine.compact()
        return {"duration_seconds": round(time.perf_counter() - started, 3)}
    if isinstance(body, CheckpointBody):
        dest = body.dest
        if dest is None:
            dest = str(node.config.data_dir.parent / f"{node.config.name}-checkpoint-{time.strftime('%Y%m%dT%H%M%S')}")
        if not Path(dest).is_absolute():
            raise NodeBadRequestError("checkpoint dest must be an absolute path")
        lsn = engine.checkpoint(Path(dest))
        return {"dest": dest, "lsn": lsn}
    if isinstance(body, ReduceCacheBody):
        reduce = getattr(engine, "reduce_cache", None)
        if reduce is not None:
            return {"cache": reduce(body.cache_bytes)}
        clear = getattr(engine, "clear_cache", None)
        if clear is not None:
            clear()
            return {"cache": "cleared"}
        engine.flush()
        return {"cache": "flushed (this backend has no cache control)"}
    if isinstance(body, WalArchiveBody):
        repo = body.repo or (str(node.config.archive) if node.config.archive else None)
        if not repo:
            raise NodeBadRequestError('wal-archive needs {"repo": PATH} or a node started with --archive')
        archive = attach_archiver(engine, repo) if node.archive is None else node.archive
        segments = list_segments(engine.wal_dir)
        open_segment = segments[-1].path if segments else None
        added = archive.archive_sealed(engine.wal_dir, exclude=open_segment)
        return {"archived": [segment.name for segment in added], "repo": location_text(repo)}
    if action == "verify":
        return node.vitals.verify_and_clear()
    if isinstance(body, ScrubBody):
        return node.vitals.scrub_now(body.rate)
    raise NodeBadRequestError(f"unknown admin action {action!r}")
