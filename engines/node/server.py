"""Running a node: uvicorn in the foreground (``drconsole node serve``) or in a thread (tests).

SIGTERM and SIGINT ask uvicorn to stop: it stops accepting, lets requests in flight finish (long
polls end within their wait), runs the app's shutdown (followers and peer polls stop, the engine
closes and flushes), and ``serve`` returns 0. uvicorn re-raises a captured signal after shutdown
by default, which would turn a clean stop into death by SIGTERM; ``_Server`` handles the signals
itself instead.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Generator, Sequence
from types import FrameType

import uvicorn

from engines.node.admin_audit import AdminAudit
from engines.node.app import build_app
from engines.node.config import NodeConfig
from engines.node.drain import ExtensionFactory
from engines.node.errors import NodeUnreachableError
from engines.node.node import Node
from engines.node.tokens import book_token

__all__ = ["serve", "ServerThread"]


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._on_started is not None:
            self._on_started()  # listening, the app's startup done: now it may say "serving"

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


def _uvicorn_config(
    node: Node, log_level: str, extensions: Sequence[ExtensionFactory] = (), audit: AdminAudit | None = None
) -> uvicorn.Config:
    return uvicorn.Config(
        build_app(node, extensions, audit),
        host=node.config.host,
        port=node.config.port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        limit_concurrency=node.config.max_connections,
        backlog=2048,
    )


def serve(
    config: NodeConfig,
    *,
    log_level: str = "warning",
    extensions: Sequence[ExtensionFactory] = (),
    on_open: Callable[[], None] | None = None,
    on_started: Callable[[], None] | None = None,
    audit: AdminAudit | None = None,
) -> int:
    """Open the data dir and serve it until SIGTERM/SIGINT; return the exit code.

    ``extensions`` mount more routes (``drain.py``): ``node serve`` adds the playbook agent.
    ``on_open`` is called once the data dir is open, ``on_started`` once the node listens (so
    nothing says "serving" for a data dir that could not be opened). ``audit`` records every admin
    call (``admin_audit.py``).

    Raises:
        EngineError: the data dir cannot be created or opened (nothing is served).
    """
    _check_port(config.host, config.port)
    _log_to_stderr(log_level)
    node = Node(config)
    _book_group_token(config)
    if on_open is not None:
        on_open()
    server = _Server(_uvicorn_config(node, log_level, extensions, audit), on_started)
    try:
        server.run()
    finally:
        node.close()  # idempotent; covers a failed startup (port in use) too
    return 0 if server.started else 3


def _book_group_token(config: NodeConfig) -> None:
    """A group shares one admin token: a run on this node's agent fences and promotes its members
    (engines/node/tokens.py). Only this process's own node books; test threads serving several
    nodes in one process do not, so a call there without a token still goes without one."""
    if not config.token:
        return
    for url in (config.url, f"http://{config.host}:{config.port}", config.follow, *config.peers):
        if url:
            book_token(url, config.token)


def _log_to_stderr(log_level: str) -> None:
    """Send the node's own log (reseeds, rejoins, divergence) to stderr, at info or above.

    Those events change the data dir, so they are logged even when uvicorn's ``--log-level`` is
    quieter; ``debug`` lowers it for the node too.
    """
    logger = logging.getLogger("drconsole.node")
    if logger.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if log_level == "debug" else logging.INFO)
    logger.propagate = False


def _check_port(host: str, port: int) -> None:
    """Fail with one clear message, before the data dir is opened, when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise NodeUnreachableError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                hint="choose another --port, or stop what holds it",
            ) from exc


class ServerThread:
    """A node served by uvicorn in a background thread (fast tests, the bench, the demo)."""

    def __init__(
        self,
        config: NodeConfig,
        *,
        log_level: str = "warning",
        extensions: Sequence[ExtensionFactory] = (),
        audit: AdminAudit | None = None,
    ) -> None:
        self.node = Node(config)
        self.server = _Server(_uvicorn_config(self.node, log_level, extensions, audit))
        self.thread = threading.Thread(target=self.server.run, name=f"node-{config.name}", daemon=True)

    @property
    def url(self) -> str:
        return self.node.url

    def start(self, timeout: float = 10.0) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.node.close()
                raise RuntimeError(f"node {self.node.config.name} did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.node.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
