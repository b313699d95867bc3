"""``drconsole serve web``: the read-only dashboard in a browser (textual-serve), viewer role only.

Each browser tab gets its own ``drconsole dashboard`` process talking Textual's web driver over
pipes; the command is fixed here (nothing the browser sends chooses it) and its environment says
``DRCONSOLE_ROLE=viewer``, so the app is the read-only dashboard whatever keys arrive
(console.tui.launch.build_app). The environment is console.cli.servers.roles' allow-list, not the server's:
an authenticating proxy's secrets or a node token in the server's environment never reach it.
Sessions are audited like SSH sessions (user "web", the client's address).

The page is textual-serve's with drconsole's template (console/cli/servers/web_assets): the terminal's
font is served from ``/assets/fonts/`` by this server, so the page requests nothing from any other
host (textual-serve's own template loads it from an external font service). Its first paint is the
dashboard itself: the page carries a frame rendered before it was served (console.cli.servers.first_frame),
shown until the live terminal draws, so a browser that screenshots on load sees the fleet, not a splash.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import signal
import sys
from pathlib import Path

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from console.cli.servers.audit import SessionAudit
from console.cli.servers.first_frame import FirstFrames, parse_size
from console.cli.servers.roles import console_argv, console_environment
from playbooks.audit import AuditLog
from playbooks.state import StateDir

__all__ = ["WallServer", "viewer_command"]

STOP_GRACE_SECONDS = 3.0  # a dashboard that does not quit when asked is killed after this
ASSETS = Path(__file__).with_name("web_assets")
log = logging.getLogger("drconsole.serve.web")


def viewer_command(config: Path | None) -> str:
    """The one command a browser session runs (``exec``: the dashboard replaces the shell)."""
    return "exec " + shlex.join(console_argv("viewer", config))


class _ViewerService(AppService):
    """textual-serve's per-tab process, with the viewer's environment instead of the server's."""

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        inherited = super()._build_environment(width, height)
        textual = {
            name: value
            for name, value in inherited.items()
            if name.startswith("TEXTUAL_") or name in ("TERM_PROGRAM", "TERM_PROGRAM_VERSION", "COLUMNS", "ROWS")
        }
        return console_environment("viewer", user="web", extra=textual)

    async def kill(self) -> None:
        process = self._process
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()


class WallServer(Server):
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        config: Path | None = None,
        public_url: str | None = None,
        max_sessions: int = 32,
    ) -> None:
        super().__init__(
            viewer_command(config),
            host=host,
            port=port,
            title="drconsole dashboard",
            public_url=public_url,
            templates_path=ASSETS / "templates",
        )
        self.max_sessions = max_sessions
        self.sessions = 0
        self.first_frames = FirstFrames(config)

    def initialize_logging(self) -> None:
        logging.basicConfig(level="INFO", format="drconsole: serve web: %(message)s", stream=sys.stderr)

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.router.add_static("/assets", ASSETS, name="assets")
        return app

    @aiohttp_jinja2.template("app_index.html")
    async def handle_index(self, request: web.Request) -> dict[str, object]:
        """textual-serve's page context, plus where the bundled font is (``assets_url``) and the first frame.

        ``?size=COLUMNSxROWS`` chooses the first frame's size (default 120x40); the page scales it to
        the window until the live terminal, sized to the window, replaces it.
        """
        context: dict[str, object] = await Server.handle_index.__wrapped__(self, request)  # type: ignore[attr-defined]
        path = request.app.router["assets"].url_for(filename="/")
        context["assets_url"] = f"{self.public_url}{path}".rstrip("/") + "/"
        size = parse_size(request.query.get("size"))
        delayed = "delay" in request.query  # textual-serve's "press Start" page: no session, no frame
        context["first_frame"] = Markup("" if delayed else await self.first_frames.get(size))
        context["frame_columns"], context["frame_rows"] = size.columns, size.rows
        return context

    async def on_startup(self, app: web.Application) -> None:
        """Nothing: the line saying where we listen is printed once the socket is bound (``_serve``)."""

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One browser session: its own dashboard process, audited, killed if it will not quit."""
        websocket = web.WebSocketResponse(heartbeat=15)
        if self.sessions >= self.max_sessions:
            await websocket.prepare(request)
            await websocket.close(message=b"too many sessions")
            return websocket
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        client = f"{peer[0]} {peer[1]} {self.port}" if peer else ""
        audit = SessionAudit(user="web", role="viewer", client=client, via="web", log=AuditLog(StateDir().audit_log))
        service: _ViewerService | None = None
        self.sessions += 1
        try:
            await websocket.prepare(request)
            service = _ViewerService(
                self.command,
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=websocket.close,  # type: ignore[arg-type]
                download_manager=self.download_manager,
            )
            audit.start()
            await service.start(width, height)
            await self._process_messages(websocket, service)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception as error:  # noqa: BLE001 - one tab's failure must not stop the wall view
            log.exception(error)
        finally:
            self.sessions -= 1
            if service is not None:
                await self._stop(service)
            audit.end("ok", "the browser went away")
        return websocket

    async def _stop(self, service: _ViewerService) -> None:
        try:
            await asyncio.wait_for(service.stop(), STOP_GRACE_SECONDS)
        except (TimeoutError, OSError, RuntimeError):
            await service.kill()
        await service.kill()  # stop() returns when its output ends; make sure the process is gone too

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM (textual-serve's ``serve`` without its banner, and port 0 allowed)."""
        self.initialize_logging()
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(number, stop.set)
        runner = web.AppRunner(await self._make_app(), handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.port = int(server.sockets[0].getsockname()[1])
        if self.public_url.endswith(":0"):
            self.public_url = f"http://{self.host}:{self.port}"
        sys.stderr.write(
            f"drconsole: serving the read-only dashboard on {self.public_url} (listening on {self.host}:{self.port})\n"
        )
        sys.stderr.flush()
        try:
            await stop.wait()
        finally:
            await runner.cleanup()  # closes the websockets: each session stops its dashboard
