"""The embedded demo workspace: a small local fleet so that a new user sees the real thing at once.

    drconsole demo [--workspace DIR]      python -m console.demo [--workspace DIR]

``create_workspace`` makes one data directory per available backend (real engines, seeded with
data), a standby copy of the first one (a checkpoint that then falls behind), a backup of the
first node when the backup package is installed, and a ``drconsole.toml`` describing them. The
console then reads them with ``LocalSource``; in interactive mode a light load keeps writing to
the primaries so that the panes move. Node processes (HTTP) come with the node issue, and the
Overview says so.

A workspace is recognised by its ``drconsole-demo.json``; any other non-empty directory is
refused rather than written into.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from engines import create_engine, open_engine
from engines.errors import EngineError, InvalidArgumentError
from engines.marker import read_marker, write_marker

__all__ = ["DEMO_MARKER", "DemoLoad", "create_workspace", "default_workspace", "main", "run_cli", "run_demo"]

DEMO_MARKER = "drconsole-demo.json"
NODE_NAMES = {"lsm": "orders", "cow": "ledger", "rocksdb": "cache"}
NOTICE = ("demo workspace {path}: data dirs read directly (LocalSource); node processes and their HTTP API "
          "come with the node issue")


def available_backends() -> list[str]:
    return [name for name in ("lsm", "cow", "rocksdb") if importlib.util.find_spec(f"engines.{name}.engine")]


def default_workspace() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    path = Path(base) / "drconsole" / "demo"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: fall back to the temp dir
        path = Path(tempfile.gettempdir()) / f"drconsole-demo-{os.getuid()}"
    return path


def _seed(engine_path: Path, backend: str, name: str, keys: int) -> None:
    with create_engine(engine_path, backend=backend, node_name=name) as engine:
        batch = [(f"{name}:{index:06d}".encode(), f"value {index} of {name}".encode() * 4) for index in range(keys)]
        for start in range(0, len(batch), 200):
            engine.write_batch(batch[start:start + 200])
        engine.flush()


def create_workspace(workspace: Path, *, keys: int = 500) -> Path:
    """Create (or reuse) the demo workspace; returns its drconsole.toml."""
    workspace = Path(workspace).absolute()
    config = workspace / "drconsole.toml"
    if (workspace / DEMO_MARKER).is_file() and config.is_file():
        return config
    if workspace.exists() and any(workspace.iterdir()):
        raise InvalidArgumentError(f"{workspace} is not empty and is not a drconsole demo workspace",
                                   hint="give an empty or new directory with --workspace")
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
        entries.append({"name": name, "engine": backend, "data_dir": f"nodes/{name}", "role": "primary"})
    if not entries:
        raise InvalidArgumentError(f"no backend could create a demo node ({'; '.join(skipped)})")
    primary = entries[0]
    standby_name = f"{primary['name']}-standby"
    standby = nodes_dir / standby_name
    with open_engine(nodes_dir / primary["name"], mode="rw") as engine:
        engine.checkpoint(standby)
        # The primary moves on after the copy: the standby shows lag, as a real one would.
        for index in range(60):
            engine.put(f"{primary['name']}:late:{index:04d}".encode(), b"written after the standby copy")
    marker = read_marker(standby)
    if marker is not None:
        marker.node_name = standby_name
        write_marker(standby, marker)
    entries.append({"name": standby_name, "engine": primary["engine"], "data_dir": f"nodes/{standby_name}",
                    "role": "standby", "upstream": primary["name"]})
    if importlib.util.find_spec("engines.backup") is not None:
        try:
            from engines.backup import create_backup

            repo = workspace / "backups" / primary["name"]
            create_backup(repo, data_dir=nodes_dir / primary["name"])
            primary["backup_repo"] = f"backups/{primary['name']}"
        except (EngineError, OSError, ImportError):
            pass  # the demo works without a backup; the card then says "no backup yet"
    (workspace / "reports").mkdir(exist_ok=True)
    lines = ["# The drconsole demo workspace (made by `drconsole demo`); safe to delete.",
             "[console]", "refresh_seconds = 1", 'theme = "dark"', 'source = "local"', 'report_dir = "reports"', "",
             "[thresholds]", "disk_usage = 0.85", "memory_usage = 0.90", "node_down_seconds = 30", ""]
    for entry in entries:
        lines.append("[[node]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in entry.items()]
        lines.append("")
    config.write_text("\n".join(lines), encoding="utf-8")
    (workspace / DEMO_MARKER).write_text(json.dumps({"created_by": "drconsole demo", "nodes": len(entries),
                                                     "skipped_backends": skipped}) + "\n", encoding="utf-8")
    return config


class DemoLoad:
    """A light load on the demo's primaries (a few writes a second) so that the panes move."""

    def __init__(self, data_dirs: Sequence[Path], *, interval_seconds: float = 0.5) -> None:
        self.data_dirs = list(data_dirs)
        self.interval_seconds = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drconsole-demo-load", daemon=True)
        self.error: str | None = None

    def start(self) -> DemoLoad:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        engines = []
        try:
            for path in self.data_dirs:
                engines.append(open_engine(path, mode="rw"))
            count = 0
            while not self._stop.wait(self.interval_seconds):
                count += 1
                for engine in engines:
                    engine.put(f"load:{count:08d}".encode(), os.urandom(64).hex().encode())
        except EngineError as exc:
            self.error = exc.message
        finally:
            for engine in engines:
                engine.close()


def run_demo(workspace: Path | None = None, *, mode: str = "interactive", theme: str | None = None,
             read_only: bool = False) -> int:
    """Create the workspace if needed and open the console on it; the exit code."""
    from console.config import ConfigError, load_config
    from console.launch import build_app, has_terminal, launch, no_terminal
    from console.themes import ThemeError

    if not has_terminal():
        return no_terminal()  # before creating anything
    path = Path(workspace) if workspace is not None else default_workspace()
    try:
        config_path = create_workspace(path)
        config = load_config(config_path)
        app = build_app(mode=mode, theme=theme, read_only=read_only, config=config,
                        notice=NOTICE.format(path=path))
    except (ConfigError, ThemeError, EngineError) as exc:
        sys.stderr.write(f"drconsole: error: {exc.message}" + (f" ({exc.hint})" if exc.hint else "") + "\n")
        return exc.exit_code
    load = None
    if mode == "interactive" and not read_only:
        primaries = [spec.data_dir for spec in config.nodes if spec.role == "primary" and spec.data_dir is not None]
        load = DemoLoad(primaries).start()
    try:
        return launch(app)
    finally:
        if load is not None:
            load.stop()


def run_cli(args: argparse.Namespace, _output: object = None) -> int:
    """The handler of ``drconsole demo [--workspace DIR] [--theme NAME]`` (console.cli's table)."""
    return run_demo(getattr(args, "workspace", None), theme=getattr(args, "theme", None))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="drconsole demo", description="Open the console on a demo fleet.")
    parser.add_argument("--workspace", type=Path, default=None, help="where the demo fleet lives "
                        "(default: ~/.local/share/drconsole/demo)")
    parser.add_argument("--theme", default=None)
    parser.add_argument("--read-only", action="store_true")
    parser.add_argument("--dashboard", action="store_true")
    args = parser.parse_args(argv)
    return run_demo(args.workspace, mode="dashboard" if args.dashboard else "interactive", theme=args.theme,
                    read_only=args.read_only)


if __name__ == "__main__":
    sys.exit(main())
