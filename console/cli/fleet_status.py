"""``drconsole status``: the configured fleet in one table (what ``patronictl list`` is to Patroni).

    drconsole status [--json] [--watch [SECONDS]]

One row per node: name, engine, role, epoch, LSN, lag, health, disk, last backup age, alerts. The
fleet is read exactly as the console reads it (``fleet_source`` with the config's
``source_options``), so the table and the cards never disagree. Exit 0 when every node is healthy,
1 when any is not (a script's check), 2 on a bad config. ``--watch`` redraws until interrupted;
it is for people, so it refuses ``--json`` (the contract: one JSON object per command).
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

from console.cli.common import add_command, positive_seconds
from console.config_lookup import resolve_config
from console.output import EXIT_OK, EXIT_PROBLEM, Output, output_for

__all__ = ["register", "run_status", "status_rows", "render_table"]

COLUMNS = ("NODE", "ENGINE", "ROLE", "EPOCH", "LSN", "LAG", "HEALTH", "DISK", "BACKUP", "ALERTS")


def register(subparsers: Any, common: argparse.ArgumentParser | None = None) -> None:
    parser = add_command(
        subparsers, "status", "the configured fleet in one table (exit 1 when a node is unhealthy)", run_status, common
    )
    parser.add_argument(
        "--watch",
        nargs="?",
        type=positive_seconds,
        const=2.0,
        default=None,
        metavar="SECONDS",
        help="redraw every SECONDS (default 2) until ctrl+c (which lets the table being read finish; twice: at once)",
    )


def _config(args: argparse.Namespace) -> tuple[Path, str]:
    from console.config_lookup import demo_workspace_path
    from engines.errors import InvalidArgumentError

    path, source = resolve_config(getattr(args, "config", None))
    if path is None:
        demo = demo_workspace_path() / "drconsole.toml"
        if not demo.is_file():
            raise InvalidArgumentError(
                "no config found and no demo workspace to show",
                hint="pass --config PATH (or set $DRCONSOLE_CONFIG), or run `drconsole demo` once",
            )
        path, source = demo, "demo workspace"
    return path, source


def _snapshot(config: Any) -> Any:
    import asyncio

    from fleet import fleet_source

    async def collect() -> Any:
        source = fleet_source(config.nodes, **config.source_options())
        try:
            return await source.collect()
        finally:
            await source.aclose()

    return asyncio.run(collect())


def status_rows(snapshot: Any) -> list[dict[str, Any]]:
    """One JSON-ready row per node, in config order."""
    rows = []
    for node in snapshot.nodes:
        backup_age = node.backup.age_seconds(snapshot.taken_at)
        rows.append(
            {
                "name": node.name,
                "engine": node.engine,
                "role": node.role,
                "epoch": node.epoch,
                "last_lsn": node.last_lsn,
                "group": node.group,
                "lag_seconds": node.replication.lag_seconds,
                "lag_records": node.replication.lag_records,
                "health": node.health.value,
                "health_reason": node.health_reason,
                "reachable": node.reachable,
                "disk_usage_ratio": node.disk.usage_ratio,
                "disk_used_bytes": node.disk.volume_used_bytes,
                "disk_total_bytes": node.disk.volume_total_bytes,
                "last_backup_age_seconds": None if backup_age is None else round(backup_age, 1),
                "alerts": [
                    {"rule": alert.rule, "severity": alert.severity.value, "message": alert.message}
                    for alert in node.alerts
                ],
                "address": node.address,
            }
        )
    return rows


def _cells(row: dict[str, Any]) -> tuple[str, ...]:
    from console.format import HEALTH_STYLE, bytes_text, duration_text, percent_text
    from fleet import Health

    symbol, word, _style = HEALTH_STYLE[Health(row["health"])]
    disk = percent_text(row["disk_usage_ratio"])
    if row["disk_total_bytes"]:
        disk += f" {bytes_text(row['disk_used_bytes'])}/{bytes_text(row['disk_total_bytes'])}"
    # A primary has no lag: "—" rather than a "0s" that reads like a measurement.
    parts = (
        []
        if row["role"] == "primary"
        else [
            *([duration_text(row["lag_seconds"])] if row["lag_seconds"] is not None else []),
            *([f"{row['lag_records']} rec"] if row["lag_records"] else []),
        ]
    )
    lag = " ".join(parts) or "—"
    alerts = ", ".join(f"{'✖' if alert['severity'] == 'critical' else '▲'} {alert['rule']}" for alert in row["alerts"])
    return (
        row["name"],
        row["engine"] or "?",
        row["role"],
        "—" if row["epoch"] is None else str(row["epoch"]),
        "—" if row["last_lsn"] is None else str(row["last_lsn"]),
        lag,
        f"{symbol} {word}",
        disk,
        duration_text(row["last_backup_age_seconds"]),
        alerts or "—",
    )


def render_table(rows: list[dict[str, Any]]) -> str:
    """Aligned columns, status as symbol + word (never colour alone); greppable by node name."""
    table = [COLUMNS, *(_cells(row) for row in rows)]
    widths = [max(len(line[index]) for line in table) for index in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in table)


def _payload(config_path: Path, source: str, snapshot: Any) -> dict[str, Any]:
    from console.cli.common import version

    rows = status_rows(snapshot)
    return {
        "version": version(),
        "config": str(config_path),
        "config_source": source,
        "taken_at": snapshot.taken_at.isoformat(),
        "healthy": all(row["health"] == "ok" for row in rows),
        "nodes": rows,
        "notices": list(snapshot.notices),
    }


def _heading(payload: dict[str, Any]) -> str:
    taken = datetime.fromisoformat(payload["taken_at"])
    unhealthy = sum(1 for row in payload["nodes"] if row["health"] != "ok")
    verdict = "all healthy" if not unhealthy else f"{unhealthy} of {len(payload['nodes'])} not healthy"
    lines = [f"{payload['config']} ({payload['config_source']}) · {taken:%Y-%m-%d %H:%M:%S} UTC · {verdict}"]
    lines += [f"! {notice}" for notice in payload["notices"]]
    return "\n".join(lines)


def run_status(args: argparse.Namespace, output: Output | None = None) -> int:
    from console.config import load_config
    from engines.errors import InvalidArgumentError

    out = output_for(args, output)
    watch = getattr(args, "watch", None)
    if watch is not None and (out.json_mode or watch <= 0):
        raise InvalidArgumentError(
            "--watch takes a positive number of seconds and cannot be combined with --json",
            hint="scripts poll `drconsole status --json` instead",
        )
    path, source = _config(args)
    config = load_config(path)
    if not config.nodes and config.prometheus.url is None:  # Prometheus alone names the nodes it scrapes
        raise InvalidArgumentError(f"{path}: no [[node]] configured", hint="add one [[node]] table per node")
    if watch is None:
        payload = _payload(path, source, _snapshot(config))
        out.result(payload, _heading(payload) + "\n" + render_table(payload["nodes"]))
        return EXIT_OK if payload["healthy"] else EXIT_PROBLEM
    return _watch(config, path, source, watch, out)


def _watch(config: Any, path: Path, source: str, every: float, out: Output) -> int:
    """Redraw every ``every`` seconds until ctrl+c; the exit code of the last table drawn.

    ctrl+c only asks the loop to stop: it ends after the snapshot being taken (each node answers
    within the source's deadline), never in the middle of one. Left to Python's KeyboardInterrupt
    (or to asyncio.run's handler, which cancels the snapshot), the interrupt lands anywhere: in the
    HTTP client, in a thread pool's lock, in a cancellation that a read finishing at that moment
    absorbs. In a full test run one `status --watch` was still running 30 s after its ctrl+c.
    A second ctrl+c stops at once.
    """
    import signal
    import sys
    import threading

    stop = threading.Event()

    def on_interrupt(_signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    healthy = True
    try:
        while not stop.is_set():
            payload = _payload(path, source, _snapshot(config))
            if stop.is_set():
                break
            healthy = payload["healthy"]
            clear = "\x1b[H\x1b[2J" if sys.stdout.isatty() else ""
            out.result(
                {},
                clear
                + _heading(payload)
                + f" · every {every:g}s, ctrl+c to stop\n"
                + render_table(payload["nodes"])
                + "\n",
            )
            stop.wait(every)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, previous)
    return EXIT_OK if healthy else EXIT_PROBLEM
