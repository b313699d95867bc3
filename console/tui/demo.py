"""The embedded demo workspace: a small local fleet so that a new user sees the real thing at once.

    drconsole demo [--workspace DIR] [--theme NAME]

``create_workspace`` makes one data directory per available backend (real engines, seeded with
data), a standby copy of the first one (a checkpoint that then falls behind), a backup of the
first node when the backup package is installed, and a ``drconsole.toml`` describing them.

``run_demo`` then starts one ``drconsole node serve`` process per data dir on a free loopback port
(the standby following the first node), in the background: the console paints at once and the
cards say "starting" until each node answers. The console reads the nodes over HTTP; in
interactive mode a light load writes to the primaries through their API so that the panes move.
Every process it started is stopped when the console ends (and, should the console be killed,
the kernel sends them SIGTERM: PR_SET_PDEATHSIG), so no node outlives the demo.

A workspace is recognised by its ``drconsole-demo.json``; any other non-empty directory is
refused rather than written into.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from console.config import ConfigError, load_config
from console.config_lookup import DEMO_MARKER, DEMO_NODES, demo_workspace_path, use_demo_state
from console.tui.app import DrConsoleApp
from console.tui.launch import build_app, has_terminal, launch, no_terminal
from console.tui.themes import ThemeError
from drills.node import free_port, serve_command
from engines import create_engine, open_engine
from engines.errors import DrconsoleError, EngineError, InvalidArgumentError
from engines.fsutil import atomic_write_text
from engines.marker import read_marker, write_marker
from engines.node.client import NodeClient
from fleet import FleetSnapshot, FleetSource, Health, NodeSpec

__all__ = [
    "DEMO_MARKER",
    "DemoFleet",
    "DemoLoad",
    "DemoSession",
    "StartingSource",
    "create_workspace",
    "default_workspace",
    "demo_session",
    "run_cli",
    "run_demo",
]

NODE_NAMES = {"lsm": "orders", "cow": "ledger", "rocksdb": "cache"}
NOTICE = (
    "demo workspace {path}: {count} `drconsole node serve` processes on 127.0.0.1 (logs in {path}/logs, "
    "incidents and runs in {path}/state), stopped when you quit"
)
ROOT = Path(__file__).resolve().parents[2]


def available_backends() -> list[str]:
    return [name for name in ("lsm", "cow", "rocksdb") if importlib.util.find_spec(f"engines.{name}.engine")]


def default_workspace() -> Path:
    path = demo_workspace_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: fall back to the temp dir
        path = Path(tempfile.gettempdir()) / f"drconsole-demo-{os.getuid()}"
    return path


def _seed(engine_path: Path, backend: str, name: str, keys: int) -> None:
    with create_engine(engine_path, backend=backend, node_name=name) as engine:
        batch = [(f"{name}:{index:06d}".encode(), f"value {index} of {name}".encode() * 4) for index in range(keys)]
        for start in range(0, len(batch), 200):
            engine.write_batch(batch[start : start + 200])
        engine.flush()


def _own_copies(root: Path) -> None:
    """Give every hard-linked file under ``root`` its own bytes.

    A checkpoint hard-links the immutable tables; a real standby is on another host and shares no
    block with its primary. With shared inodes a fault flipped in the primary's table (drconsole
    fault inject) turned the standby CORRUPT too, which is no picture of a standby.
    """
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.stat().st_nlink > 1:
            copy = path.with_name(path.name + ".own")
            shutil.copy2(path, copy)
            os.replace(copy, path)


def create_workspace(workspace: Path, *, keys: int = 500) -> Path:
    """Create (or reuse) the demo workspace; returns its drconsole.toml."""
    workspace = Path(workspace).absolute()
    config = workspace / "drconsole.toml"
    if (workspace / DEMO_MARKER).is_file() and config.is_file():
        return config
    if workspace.exists() and any(workspace.iterdir()):
        raise InvalidArgumentError(
            f"{workspace} is not empty and is not a drconsole demo workspace",
            hint="give an empty or new directory with --workspace",
        )
    backends = available_backends()
    if not backends:
        raise InvalidArgumentError("no storage backend is installed", hint="reinstall drconsole")
    nodes_dir = workspace / "nodes"
    nodes_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    skipped = []
    for backend in backends:
        name = NODE_NAMES[backend]
        try:
            _seed(nodes_dir / name, backend, name, keys)
        except Exception as exc:  # noqa: BLE001 - a backend still being built must not sink the demo
            (nodes_dir / name).rename(nodes_dir / f".failed-{name}") if (nodes_dir / name).exists() else None
            skipped.append(f"{backend}: {type(exc).__name__}: {exc}")
            continue
        entries.append(
            {
                "name": name,
                "engine": backend,
                "data_dir": f"nodes/{name}",
                "role": "primary",
                "log_file": f"logs/{name}.log",
            }
        )
    if not entries:
        raise InvalidArgumentError(f"no backend could create a demo node ({'; '.join(skipped)})")
    primary = entries[0]
    standby_name = f"{primary['name']}-standby"
    standby = nodes_dir / standby_name
    with open_engine(nodes_dir / primary["name"], mode="rw") as engine:
        engine.checkpoint(standby)
        _own_copies(standby)
        # The primary moves on after the copy: the standby shows lag, as a real one would.
        for index in range(60):
            engine.put(f"{primary['name']}:late:{index:04d}".encode(), b"written after the standby copy")
    marker = read_marker(standby)
    if marker is not None:
        marker.node_name = standby_name
        write_marker(standby, marker)
    entries.append(
        {
            "name": standby_name,
            "engine": primary["engine"],
            "data_dir": f"nodes/{standby_name}",
            "role": "standby",
            "upstream": primary["name"],
            "log_file": f"logs/{standby_name}.log",
        }
    )
    if importlib.util.find_spec("engines.backup") is not None:
        try:
            from engines.backup import create_backup

            repo = workspace / "backups" / primary["name"]
            create_backup(repo, data_dir=nodes_dir / primary["name"])
            primary["backup_repo"] = f"backups/{primary['name']}"
        except (EngineError, OSError, ImportError):
            pass  # the demo works without a backup; the card then says "no backup yet"
    (workspace / "reports").mkdir(exist_ok=True)
    lines = [
        "# The drconsole demo workspace (made by `drconsole demo`); safe to delete.",
        "[console]",
        "refresh_seconds = 1",
        'theme = "dark"',
        'source = "local"',
        'report_dir = "reports"',
        "",
        "[thresholds]",
        "disk_usage = 0.85",
        "memory_usage = 0.90",
        "node_down_seconds = 30",
        "",
    ]
    for entry in entries:
        lines.append("[[node]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in entry.items()]
        lines.append("")
    config.write_text("\n".join(lines), encoding="utf-8")
    (workspace / DEMO_MARKER).write_text(
        json.dumps({"created_by": "drconsole demo", "nodes": len(entries), "skipped_backends": skipped}) + "\n",
        encoding="utf-8",
    )
    return config


class DemoLoad:
    """A light load on the demo's primaries (a few writes a second) so that the panes move.

    ``urls``: written through the node API (the demo's nodes); ``data_dirs``: through the engine,
    for a fleet of data dirs without processes. A node still starting only makes a write fail.
    """

    def __init__(
        self, data_dirs: Sequence[Path] = (), *, urls: Sequence[str] = (), interval_seconds: float = 0.5
    ) -> None:
        self.data_dirs = list(data_dirs)
        self.urls = list(urls)
        self.interval_seconds = interval_seconds
        self.writes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drconsole-demo-load", daemon=True)
        self.error: str | None = None

    def start(self) -> DemoLoad:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        engines = []
        clients = [NodeClient(url, timeout=1.0) for url in self.urls]
        try:
            for path in self.data_dirs:
                engines.append(open_engine(path, mode="rw"))
            count = 0
            while not self._stop.wait(self.interval_seconds):
                count += 1
                key, value = f"load:{count:08d}".encode(), os.urandom(64).hex().encode()
                for engine in engines:
                    engine.put(key, value)
                    self.writes += 1
                for client in clients:
                    try:
                        client.put(key, value)
                        self.writes += 1
                    except Exception:  # noqa: BLE001 - a node starting or stopped: the next tick tries again
                        continue
        except EngineError as exc:
            self.error = exc.message
        finally:
            for engine in engines:
                engine.close()
            for client in clients:
                client.close()


def _background_child() -> None:
    """In the child before exec: a lower priority, so the console's first paint is not slowed by four
    interpreters starting at once; and SIGTERM when the console's process dies, however it dies (Linux)."""
    os.nice(5)
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the console's own stop() is the only guard


class DemoFleet:
    """The demo's node processes: started in the background, stopped (terminate, then kill) on ``stop``."""

    def __init__(self, specs: Sequence[NodeSpec], logs: Path) -> None:
        self.logs = logs
        self.urls = {spec.name: f"http://127.0.0.1:{free_port()}" for spec in specs}
        primaries = {spec.name for spec in specs if spec.role != "standby"}
        self.specs = [spec.model_copy(update={"url": self.urls[spec.name]}) for spec in specs]
        self._follow = {
            spec.name: self.urls[spec.upstream]
            for spec in specs
            if spec.role == "standby" and spec.upstream in primaries
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> DemoFleet:
        """Spawn every node and return at once; each becomes reachable when it has opened its engine."""
        self.logs.mkdir(parents=True, exist_ok=True)
        for spec in self.specs:
            assert spec.data_dir is not None and spec.url is not None
            port = int(spec.url.rsplit(":", 1)[1])
            command = serve_command(spec.engine, spec.data_dir, port, "--name", spec.name, "--log-level", "warning")
            if spec.backup_repo is not None:  # the node reports its backups (the card's bkp line)
                command += ["--backup-repo", str(spec.backup_repo)]
                for copy in spec.backup_copies:
                    command += ["--backup-copy", copy]
            if spec.name in self._follow:
                command += ["--follow", self._follow[spec.name]]
            with open(self.logs / f"{spec.name}.log", "ab") as log:
                self.processes[spec.name] = subprocess.Popen(
                    command,
                    cwd=ROOT,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                    preexec_fn=_background_child,
                )
        # For consoles and CLI commands given the demo's config while it runs (config_lookup.demo_node_urls).
        listing = {name: {"url": self.urls[name], "pid": process.pid} for name, process in self.processes.items()}
        atomic_write_text(self.logs.parent / DEMO_NODES, json.dumps(listing, indent=1) + "\n")
        return self

    def primary_urls(self) -> list[str]:
        return [self.urls[spec.name] for spec in self.specs if spec.role != "standby"]

    def state(self, name: str) -> str | None:
        """ "starting (...)" until it answers, "exited with N" if it ended; None: not a node of the demo."""
        if name not in self.urls:
            return None
        process = self.processes.get(name)
        if process is None:
            return "starting (the node process is launched once the console is shown)"
        code = process.poll()
        if code is None:
            return f"starting (pid {process.pid}, waiting for its API)"
        return f"node process exited with {code}; see {self.logs / (name + '.log')}"

    def stop(self, timeout: float = 10.0) -> None:
        (self.logs.parent / DEMO_NODES).unlink(missing_ok=True)
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class StartingSource:
    """The fleet as ``inner`` reads it, except that a node not yet up says "starting", not "unreachable"."""

    def __init__(self, inner: FleetSource, fleet: DemoFleet) -> None:
        self.inner = inner
        self.fleet = fleet
        self.up: set[str] = set()

    async def collect(self) -> FleetSnapshot:
        snapshot = await self.inner.collect()
        nodes = []
        for node in snapshot.nodes:
            if node.reachable:
                self.up.add(node.name)
            state = self.fleet.state(node.name)
            if node.reachable or node.name in self.up or state is None:
                nodes.append(node)
                continue
            # A node that never answered yet is starting (or failed to start): no alert, no "since".
            nodes.append(
                node.model_copy(
                    update={
                        "reachable": True,
                        "unreachable_since": None,
                        "alerts": (),
                        "health": Health.UNKNOWN,
                        "health_reason": state,
                    }
                )
            )
        return snapshot.model_copy(update={"nodes": tuple(nodes)})

    async def aclose(self) -> None:
        await self.inner.aclose()


class DemoSession:
    """The console app on the demo workspace, its node processes and its load; ``close`` stops them."""

    def __init__(self, app: DrConsoleApp, fleet: DemoFleet, load: DemoLoad | None) -> None:
        self.app, self.fleet, self.load = app, fleet, load
        app.source = StartingSource(app.source, fleet) if app.source is not None else None
        # After the first frame: four interpreters starting at once would otherwise delay it.
        app.after_first_paint.append(fleet.start)
        if load is not None:
            app.after_first_paint.append(load.start)

    def close(self) -> None:
        if self.load is not None:
            self.load.stop()
        self.fleet.stop()


def demo_session(
    path: Path,
    *,
    mode: str = "interactive",
    theme: str | None = None,
    read_only: bool = False,
    watch_terminal: bool = True,
) -> DemoSession:
    """The workspace at ``path`` (created if needed) as a console with its nodes to start; raises
    ConfigError, ThemeError or DrconsoleError on bad input, before any process is started."""
    config = load_config(create_workspace(path))
    use_demo_state(path)
    fleet = DemoFleet(config.nodes, path / "logs")
    # The nodes are read over their API (source "auto"), as a real fleet is.
    config = config.model_copy(
        update={"node": fleet.specs, "console": config.console.model_copy(update={"source": "auto"})}
    )
    app = build_app(
        mode=mode,
        theme=theme,
        read_only=read_only,
        config=config,
        watch_terminal=watch_terminal,
        notice=NOTICE.format(path=path, count=len(fleet.specs)),
    )
    load = DemoLoad(urls=fleet.primary_urls()) if mode == "interactive" and not read_only else None
    return DemoSession(app, fleet, load)


def run_demo(
    workspace: Path | None = None, *, mode: str = "interactive", theme: str | None = None, read_only: bool = False
) -> int:
    """Create the workspace if needed, start its nodes, open the console on them; the exit code."""
    if not has_terminal():
        return no_terminal()  # before creating anything
    path = Path(workspace) if workspace is not None else default_workspace()
    try:
        session = demo_session(path, mode=mode, theme=theme, read_only=read_only)
    except (ConfigError, ThemeError, DrconsoleError) as exc:
        sys.stderr.write(f"drconsole: error: {exc.message}" + (f" ({exc.hint})" if exc.hint else "") + "\n")
        return exc.exit_code
    try:
        return launch(session.app)
    finally:
        session.close()


def run_cli(args: argparse.Namespace, _output: object = None) -> int:
    """The handler of ``drconsole demo [--workspace DIR] [--theme NAME]`` (registered by console.cli.console)."""
    return run_demo(getattr(args, "workspace", None), theme=getattr(args, "theme", None))
