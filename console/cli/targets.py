"""What ``--node NAME`` and ``--data-dir D`` name for ``playbook``, ``triage`` and ``incident``.

``--node`` is looked up in the config file's [[node]] tables (``console.config_lookup`` finds the
file); a ``--data-dir`` run still books the config's token files for the nodes it may call. Only
the standard library is imported at load time; the config and fleet code by the helper that needs it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from console.cli.common import absolute_path

__all__ = ["add_target", "book_config_tokens", "config_and_node", "config_path", "fleet_snapshot", "load_node_config"]


def add_target(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--node", metavar="NAME", help="a node of the config file ([[node]] name)")
    group.add_argument("--data-dir", type=absolute_path, metavar="D", help="the engine's data directory")


def config_path(args: argparse.Namespace) -> Path | None:
    from console.config_lookup import resolve_config

    return resolve_config(getattr(args, "config", None))[0]


def load_node_config(args: argparse.Namespace) -> Any:
    from engines.errors import InvalidArgumentError

    path = config_path(args)
    if path is None:
        raise InvalidArgumentError(
            "--node needs a config file with [[node]] entries, and none was found",
            hint="pass --config PATH (or create ./drconsole.toml), or use --data-dir D",
        )
    try:
        from console.config import load_config
    except ImportError as exc:
        raise InvalidArgumentError(
            f"--node needs the config support, which is not available ({exc})", hint="use --data-dir D"
        ) from exc
    return load_config(path)  # a running demo's config names its nodes by URL (console.config)


def config_and_node(args: argparse.Namespace) -> tuple[Any, Any]:
    """(config, node spec) for --node, or (None, None)."""
    from engines.errors import InvalidArgumentError

    if not getattr(args, "node", None):
        book_config_tokens(args)
        return None, None
    config = load_node_config(args)
    for spec in config.nodes:
        if spec.name == args.node:
            return config, spec
    names = ", ".join(spec.name for spec in config.nodes) or "none"
    raise InvalidArgumentError(f"no node {args.node!r} in {config.path}", hint=f"configured nodes: {names}")


def book_config_tokens(args: argparse.Namespace) -> None:
    """A ``--data-dir`` run still calls the group's nodes (failover promotes a standby): the config's
    token files, when there is a config, go with those calls (engines/node/tokens.py). A run on
    local files does not need the config otherwise, so one that cannot be read is left alone here."""
    from engines.errors import EngineError

    try:
        path = config_path(args)
        if path is not None:
            from console.config import load_config

            load_config(path)  # books each [[node]]'s token_file for its url
    except (EngineError, ImportError):
        return


def fleet_snapshot(config: Any) -> Any:
    """One fleet snapshot of the configured nodes, or None when it cannot be taken."""
    import asyncio

    try:
        from fleet import fleet_source
    except ImportError:
        return None

    async def collect() -> Any:
        source = fleet_source(config.nodes, **config.source_options())  # Alertmanager's alerts reach the probes too
        try:
            return await source.collect()
        finally:
            await source.aclose()

    try:
        return asyncio.run(collect())
    except Exception:  # noqa: BLE001 - no snapshot: the probes then say they cannot tell, and why
        return None
