"""The console's entry point, what the CLI calls (console.cli.console): ``run_app``.

    run_app(mode, theme, read_only, config_path) -> int     mode: "interactive" | "dashboard"

Bad input (config, theme) is one line on stderr and exit 2, nothing changed; no terminal is exit 2.
With no config the embedded demo workspace is opened (console.tui.demo).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.tui.app import MODES, DrConsoleApp
from console.tui.themes import load_theme

if TYPE_CHECKING:
    from console.adapters.run_adapter import RunLauncher
    from console.config import ConsoleConfig

__all__ = [
    "build_app",
    "has_terminal",
    "in_browser",
    "launch",
    "no_terminal",
    "run_app",
    "triage_factory",
    "viewer_role",
]


def _error(exc: Any) -> int:
    """Print a ConfigError, ThemeError or DrconsoleError the CLI's way; its exit code."""
    sys.stderr.write(f"drconsole: error: {exc.message}" + (f" ({exc.hint})" if exc.hint else "") + "\n")
    return int(exc.exit_code)


def build_app(
    *,
    mode: str,
    theme: str | None,
    read_only: bool,
    config: ConsoleConfig,
    watch_terminal: bool = True,
    notice: str = "",
    launcher: RunLauncher | None = None,
) -> DrConsoleApp:
    """The app for ``config`` (sources from its nodes); raises ``ThemeError`` for a bad theme.

    ``DRCONSOLE_ROLE=viewer`` (set by ``drconsole serve ssh|web`` for viewers) makes it the read-only
    dashboard whatever the arguments said: the role is enforced here, not only by the command line.
    """
    from console.adapters.run_adapter import RunLauncher
    from fleet import fleet_source
    from playbooks.incident_store import IncidentStore

    if viewer_role():
        mode, read_only = "dashboard", True
    watch_terminal = watch_terminal and not in_browser()  # the web driver talks over pipes: no TTY to watch
    loaded = load_theme(theme or config.console.theme)
    source = fleet_source(config.nodes, **config.source_options())
    report_dir = config.console.report_dir or (config.path.parent if config.path else Path.cwd())
    # Every node's runs go through the one launcher: it picks each node's runner, or says why there is none.
    launcher = launcher or RunLauncher(config.nodes, read_only=read_only)
    return DrConsoleApp(
        source=source,
        mode=mode,
        read_only=read_only,
        theme=loaded,
        thresholds=config.thresholds,
        refresh_seconds=config.console.refresh_seconds,
        report_dir=report_dir,
        notice=notice,
        launcher=launcher,
        watch_terminal=watch_terminal,
        triage_factory=triage_factory(config, getattr(launcher, "library", None)),
        node_urls=_node_urls(config),
        fleet_targets=_fleet_targets(config),
        incident_store=IncidentStore(webhook=config.notify.webhook) if config.notify.webhook else None,
    )


def _fleet_targets(config: ConsoleConfig) -> set[str]:
    """What an incident of this fleet names: a node (console, ``--node``) or its data dir (``--data-dir``)."""
    names = {spec.name for spec in config.nodes}
    return names | {str(Path(spec.data_dir).absolute()) for spec in config.nodes if spec.data_dir is not None}


def _node_urls(config: ConsoleConfig) -> dict[str, str]:
    """Each node's URL: a run's incident on it resolves when it answers /ready again."""
    return {spec.name: spec.url for spec in config.nodes if spec.url is not None}


def triage_factory(config: ConsoleConfig, library: Any | None = None) -> Any:
    """The playbooks' tree for any node of ``config``: its data dir when here, else the fleet snapshot.

    The same evidence as ``drconsole triage --node``: the configured nodes (for a group member's
    data dir and log), the thresholds, the backup repository.
    """
    from console.adapters.triage_adapter import PlaybookTriage

    specs = {spec.name: spec for spec in config.nodes}

    def build(snapshot: Any, node: str) -> Any:
        spec = specs.get(node)
        return PlaybookTriage(
            node,
            Path(spec.data_dir) if spec is not None and spec.data_dir is not None else None,
            snapshot=snapshot,
            library=library,
            specs=config.nodes,
            thresholds=config.thresholds,
            repo=Path(spec.backup_repo) if spec is not None and spec.backup_repo is not None else None,
        )

    return build


def run_app(
    mode: str = "interactive", theme: str | None = None, read_only: bool = False, config_path: Path | None = None
) -> int:
    """Run the console; returns the exit code (2: bad config or theme, nothing was changed).

    ``mode`` is "interactive" (``drconsole``, ``drconsole tui``) or "dashboard". With no
    ``config_path`` the embedded demo workspace is used (see console.tui.demo).
    """
    if mode not in MODES:
        sys.stderr.write(f"drconsole: error: unknown mode {mode!r} (use one of {', '.join(MODES)})\n")
        return 2
    from console.config import ConfigError, load_config
    from console.tui.themes import ThemeError

    if config_path is None:
        if not has_terminal():
            return no_terminal()
        from console.tui.demo import run_demo

        return run_demo(None, mode=mode, theme=theme, read_only=read_only)
    try:
        config = load_config(config_path)
        app = build_app(mode=mode, theme=theme, read_only=read_only, config=config)
    except (ConfigError, ThemeError) as exc:
        return _error(exc)
    if not config.nodes and config.prometheus.url is None:  # Prometheus alone names the nodes it scrapes
        sys.stderr.write(
            f"drconsole: error: {config_path}: no [[node]] configured (add one per node, "
            "or a [prometheus] url, or run `drconsole demo` to see a sample fleet)\n"
        )
        return 2
    return launch(app)


def viewer_role() -> bool:
    return os.environ.get("DRCONSOLE_ROLE", "") == "viewer"


def in_browser() -> bool:
    """Run by textual-serve (``drconsole serve web``): Textual's web driver, over pipes."""
    return os.environ.get("TEXTUAL_DRIVER", "").endswith("web_driver:WebDriver")


def has_terminal() -> bool:
    """Textual draws on stderr and reads stdin: both must be the terminal."""
    if os.environ.get("DRCONSOLE_FORCE_TUI") or in_browser():
        return True
    return all(stream is not None and stream.isatty() for stream in (sys.__stderr__, sys.__stdin__))


def no_terminal() -> int:
    sys.stderr.write(
        "drconsole: error: the console needs a terminal (stdin or stderr is not a TTY) "
        "(use the headless commands, e.g. `drconsole engine stats --json`)\n"
    )
    return 2


def launch(app: DrConsoleApp) -> int:
    """Run ``app`` on this terminal; its exit code."""
    if not has_terminal():
        return no_terminal()
    code = app.run()
    return int(code or app.return_code or 0)
