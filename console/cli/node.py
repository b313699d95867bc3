"""``drconsole node ...``: serve a data dir over HTTP, and look at or steer a running node.

    drconsole node serve --engine E --data-dir D --port P [--host H] [--name N] [--follow URL]
                         [--peer URL]... [--token-file F] [--read-token-file F] [--archive REPO]
                         [--durability sync|async] [--archive-timeout SECONDS] [--wal-hold-max BYTES]
                         [--max-body-memory BYTES] [--max-connections N]
                         [--scrub-interval SECONDS] [--scrub-rate BYTES_PER_SEC]
                         [--state-dir S]     (the node is also the agent of its own recovery:
                                              playbooks run on it under /agent, playbooks/agent/)
    drconsole node status URL [--json]         health, role, epoch, replication, peers (exit 1: a problem)
    drconsole node promote URL                 standby -> primary in a new epoch
    drconsole node fence URL --yes             stop a primary taking writes
    drconsole node demote URL --follow URL2    rejoin a fenced (or, with --yes, a live) primary as a standby
    drconsole node rejoin URL --primary URL2 [--yes]   rejoin an old primary as a standby of URL2; records
                                               it holds past the fork are exported (JSONL) and its data
                                               dir moved to quarantine (needs --yes when there are any)

``register(subparsers, common)`` adds the command and sets ``func(args, output) -> int`` on each
sub-command; errors are raised and rendered by ``console.cli.main``. Only the standard library is
imported at load time.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import math
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from console.cli.common import (
    BACKENDS,
    CommandGroup,
    absolute_path,
    port_number,
    positive_int,
    repository,
    whole_number,
)
from console.output import EXIT_OK, EXIT_PROBLEM, EXIT_REFUSED, Output, output_for

__all__ = ["register", "run_serve", "run_status", "run_promote", "run_fence", "run_demote", "run_rejoin"]


_SIZE_UNITS = {"": 1, "k": 2**10, "kib": 2**10, "m": 2**20, "mib": 2**20, "g": 2**30, "gib": 2**30}


def _rate(text: str) -> float:
    """Bytes per second: ``4194304``, ``4MiB``, ``512k`` (binary units)."""
    number = text.rstrip("KkMmGgIiBb")
    unit = text[len(number) :].lower()
    try:
        value = float(number) * _SIZE_UNITS[unit]
    except (ValueError, KeyError):
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate in bytes per second (e.g. 4194304 or 4MiB)")
    if value < 0:
        raise argparse.ArgumentTypeError("the rate must not be negative (0: unthrottled)")
    return value


def _size(text: str) -> int:
    """Bytes: ``67108864``, ``64MiB``, ``512k`` (binary units); at least one."""
    try:
        value = int(_rate(text))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size in bytes (e.g. 67108864 or 64MiB)") from None
    if value < 1:
        raise argparse.ArgumentTypeError("the size must be at least one byte")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    if value < 0:
        raise argparse.ArgumentTypeError("the interval must not be negative (0: no scrub)")
    return value


def _interval(text: str) -> float:
    value = _seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("the interval must be more than 0 seconds")
    return value


def _epoch(text: str) -> int:
    value = whole_number(text)
    if value > 2**53 - 1:
        raise argparse.ArgumentTypeError(f"epoch {text[:30]} is past the largest one (2**53-1)")
    return value


def _url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL (e.g. http://127.0.0.1:8081)")
    return text.rstrip("/")


def register(subparsers: Any, common: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Add ``node`` and its sub-commands to ``subparsers`` (the main parser's command list)."""
    node = CommandGroup(subparsers, "node", "serve a data dir over HTTP; status, promote, fence, demote a node", common)
    add = node.add

    def token(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--token-file", type=absolute_path, metavar="F", help="file holding the node's admin bearer token"
        )

    serve = add("serve", "host one data dir over HTTP (created with --engine when absent) until SIGTERM", run_serve)
    serve.add_argument("--engine", choices=BACKENDS, help="backend of a new data dir; an existing one must match")
    serve.add_argument("--data-dir", required=True, type=absolute_path, metavar="D")
    serve.add_argument("--port", required=True, type=port_number, metavar="P")
    serve.add_argument("--host", default="127.0.0.1", metavar="H", help="listen address (default 127.0.0.1)")
    serve.add_argument(
        "--allow-remote", action="store_true", help="allow a --host that is not a loopback address (the API has no TLS)"
    )
    serve.add_argument("--name", default="", metavar="N", help="node name (default: the data dir's name)")
    serve.add_argument("--follow", type=_url, metavar="URL", help="run as a standby of the primary at URL")
    serve.add_argument(
        "--peer",
        type=_url,
        action="append",
        default=[],
        metavar="URL",
        help="another node to poll for role and epoch (repeatable)",
    )
    token(serve)
    serve.add_argument(
        "--archive",
        type=repository,
        metavar="REPO",
        help="backup repository (a directory or sftp://USER@HOST[:PORT]/PATH): the primary archives "
        "recycled WAL there, a standby reads it (a local one)",
    )
    serve.add_argument(
        "--backup-repo",
        type=repository,
        metavar="R",
        help="backup repository (a directory or sftp://USER@HOST[:PORT]/PATH, keys from "
        "~/.ssh/config): a standby too far behind (or empty) reseeds from its newest full "
        "backup; a primary advertises it to standbys (default: --archive)",
    )
    serve.add_argument(
        "--ssh-key",
        type=absolute_path,
        metavar="FILE",
        help="private key for an sftp:// repository (default: ~/.ssh/config and the default keys)",
    )
    serve.add_argument(
        "--encrypt-key",
        type=absolute_path,
        metavar="FILE",
        help="32-byte key file: the backups and archived WAL this node writes are encrypted",
    )
    serve.add_argument(
        "--backup-copy",
        dest="backup_copies",
        action="append",
        type=repository,
        default=[],
        metavar="R2",
        help="also keep every backup and archived WAL segment in R2 (repeatable)",
    )
    serve.add_argument(
        "--sign-key",
        type=absolute_path,
        metavar="FILE",
        help="ed25519 private key: the backups this node takes are signed",
    )
    serve.add_argument("--durability", choices=("sync", "async"), default="sync", help="for a new data dir")
    serve.add_argument(
        "--archive-timeout",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="seal and archive the WAL segment being written once its first write is this old, "
        "so a PITR loses at most that much (default 60; 0: only full segments)",
    )
    serve.add_argument(
        "--wal-hold-max",
        type=_size,
        metavar="BYTES",
        help="WAL kept for an unreachable archive before writes are refused (default: the data "
        "dir's wal_hold_max_bytes, 2 GiB)",
    )
    serve.add_argument(
        "--wal-segment-bytes",
        type=positive_int,
        metavar="N",
        help="WAL segment size of a new data dir (default 64 MiB; small ones recycle sooner)",
    )
    serve.add_argument(
        "--read-token-file",
        type=absolute_path,
        metavar="F",
        help="file holding a second bearer token that /kv requests (reads and writes) need; "
        "the admin token works there too (default: /kv is open)",
    )
    serve.add_argument("--max-value-bytes", type=positive_int, default=16 * 2**20, metavar="N")
    serve.add_argument(
        "--max-body-memory",
        type=_size,
        default=64 * 2**20,
        metavar="BYTES",
        help="what request bodies in flight may hold together (default 64MiB); past it the node answers 503 at once",
    )
    serve.add_argument(
        "--body-idle-seconds",
        type=_interval,
        default=15.0,
        metavar="S",
        help="a client that stops sending its request body for S seconds gets 408 and its share "
        "of --max-body-memory back (default 15)",
    )
    serve.add_argument(
        "--max-connections",
        type=positive_int,
        default=256,
        metavar="N",
        help="connections served at once (default 256); more get 503 at once",
    )
    serve.add_argument("--peer-interval", type=_interval, default=1.0, metavar="S", help="seconds between peer polls")
    serve.add_argument("--advertise-url", type=_url, metavar="URL", help="the URL peers and standbys use for this node")
    serve.add_argument(
        "--scrub-interval",
        type=_seconds,
        default=3600.0,
        metavar="SECONDS",
        help="background scrub: seconds from one pass over every cold file to the next "
        "(default 3600; 0 disables it); damage no read touches is found within two",
    )
    serve.add_argument(
        "--scrub-rate",
        type=_rate,
        default=4 * 2**20,
        metavar="BYTES_PER_SEC",
        help="the most the scrub reads per second (default 4MiB: <= 10 %% cost to foreground "
        "latency and throughput, bench/scrub_bench.py; 0: unthrottled)",
    )
    serve.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"))
    serve.add_argument(
        "--log-file",
        type=absolute_path,
        metavar="F",
        help="append the node's log to F (its stderr: start and exit lines, errors, tracebacks, fatal "
        "signals); triage reads it to tell how the process ended (log_file in [[node]])",
    )
    serve.add_argument(
        "--state-dir",
        type=absolute_path,
        metavar="S",
        help="where the node's playbook agent keeps run journals and its audit log "
        "(default: $DRCONSOLE_STATE_DIR, else ~/.local/state/drconsole)",
    )

    status = add(
        "status",
        "health, role, epoch, replication lag and peers of the node at URL "
        "(exit 1 when unhealthy, fenced or split-brained; 3 when unreachable)",
        run_status,
    )
    status.add_argument("url", type=_url, metavar="URL")
    promote = add(
        "promote",
        "make the standby at URL the primary in a new epoch; the old primary is fenced when it learns of it",
        run_promote,
    )
    promote.add_argument("url", type=_url, metavar="URL")
    token(promote)
    fence = add("fence", "make the node at URL refuse every write (needs --yes)", run_fence)
    fence.add_argument("url", type=_url, metavar="URL")
    fence.add_argument("--reason", default="fenced by an operator")
    fence.add_argument("--epoch", type=_epoch, help="the epoch of the new primary, if known")
    fence.add_argument("--yes", action="store_true", help="confirm: the node stops taking writes")
    token(fence)
    demote = add("demote", "rejoin the node at URL as a standby of --follow (a live primary needs --yes)", run_demote)
    demote.add_argument("url", type=_url, metavar="URL")
    demote.add_argument("--follow", required=True, type=_url, metavar="URL2")
    demote.add_argument("--yes", action="store_true", help="confirm demoting a node that is still a primary")
    token(demote)
    rejoin = add(
        "rejoin",
        "rejoin the old primary at URL as a standby of --primary URL2; records it holds past "
        "the fork are exported to JSONL and its data dir moved to quarantine (needs --yes)",
        run_rejoin,
    )
    rejoin.add_argument("url", type=_url, metavar="URL")
    rejoin.add_argument("--primary", required=True, type=_url, metavar="URL2")
    rejoin.add_argument(
        "--yes",
        action="store_true",
        help="confirm setting diverged records aside, or rejoining a node that is still a primary",
    )
    token(rejoin)
    return node.parser


def _client(args: argparse.Namespace, url: str) -> Any:
    from engines.node.client import NodeClient, read_token_file
    from playbooks.agent.protocol import actor_header
    from playbooks.state import current_actor

    token_file = getattr(args, "token_file", None)
    return NodeClient(
        url, token=read_token_file(token_file) if token_file else None, actor=actor_header(current_actor())
    )  # the node's audit log names who asked


def run_serve(args: argparse.Namespace, output: Output | None = None) -> int:
    from engines.node.client import read_token_file
    from engines.node.config import NodeConfig
    from engines.node.server import serve

    out = output_for(args, output)
    if args.ssh_key is not None or args.encrypt_key is not None or args.sign_key is not None or args.backup_copies:
        from engines.backup.mirror import Access, set_process_access

        set_process_access(
            Access(
                ssh_key=args.ssh_key,
                encrypt_key=args.encrypt_key,
                sign_key=args.sign_key,
                copies=tuple(str(copy) for copy in args.backup_copies),
            )
        )
    config = NodeConfig(
        data_dir=args.data_dir,
        port=args.port,
        engine=args.engine,
        host=args.host,
        name=args.name,
        follow=args.follow,
        peers=list(args.peer),
        token=read_token_file(args.token_file) if args.token_file else None,
        archive=args.archive,
        backup_repo=args.backup_repo,
        durability=args.durability,
        allow_remote=args.allow_remote,
        max_value_bytes=args.max_value_bytes,
        wal_segment_bytes=args.wal_segment_bytes,
        peer_interval=args.peer_interval,
        advertise_url=args.advertise_url,
        scrub_interval=args.scrub_interval,
        scrub_rate=args.scrub_rate,
        archive_timeout=args.archive_timeout,
        wal_hold_max_bytes=args.wal_hold_max,
        max_body_memory=args.max_body_memory,
        max_connections=args.max_connections,
        body_idle_seconds=args.body_idle_seconds,
        read_token=read_token_file(args.read_token_file) if args.read_token_file else None,
    )
    from playbooks.agent.service import agent_extension
    from playbooks.node_audit import admin_audit, anchor_to_peers
    from playbooks.state import StateDir

    state = StateDir(args.state_dir) if args.state_dir else StateDir()
    stop_anchoring = anchor_to_peers(state, config.peers, token=config.token, node=config.name)
    with node_log(args.log_file, name=config.name, data_dir=str(config.data_dir), url=config.url) as log:

        def started() -> None:
            out.note(
                f"node {config.name} serving {config.data_dir} on {config.url}"
                + (f" as a standby of {config.follow}" if config.follow else "")
                + f"; playbook agent on {config.url}/agent (journals in {state.runs})"
            )

        try:
            log.code = serve(
                config,
                log_level=args.log_level,
                on_open=log.opened,
                on_started=started,
                extensions=[agent_extension(state=state, token_file=args.token_file)],
                audit=admin_audit(state),
            )
        finally:
            stop_anchoring()
        out.note(f"node {config.name} stopped; engine closed")
    return log.code


class NodeLog:
    """The start and exit lines of one ``node serve`` (playbooks.nodelog reads them).

    With ``--log-file`` both go to the file at once. On a bare stderr (a terminal, journald) the
    start line waits until the data dir is open: a node that never opened it (locked, missing,
    damaged) prints only its error, and no exit line for a start nobody saw.
    """

    def __init__(self, *, name: str, data_dir: str, url: str, eager: bool) -> None:
        from playbooks.nodelog import start_line

        self.name, self.pid = name, os.getpid()
        self._start = start_line(name=name, pid=self.pid, data_dir=data_dir, url=url)
        self.announced = False
        self.code = 0
        if eager:
            self.opened()

    @staticmethod
    def say(line: str) -> None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def opened(self) -> None:
        if not self.announced:
            self.announced = True
            self.say(self._start)

    def exit(self, how: str, code: int, error: str = "") -> None:
        from playbooks.nodelog import exit_line

        if self.announced:
            self.say(exit_line(name=self.name, pid=self.pid, how=how, code=code, error=error))


@contextlib.contextmanager
def node_log(log_file: Path | None, *, name: str, data_dir: str, url: str) -> Iterator[NodeLog]:
    """The node's log: stderr appended to ``log_file`` (when given), a start line, an exit line saying how it ended.

    Python's faulthandler reports a fatal signal (SIGSEGV, SIGABRT) on the same stream, and an
    unexpected exception leaves its traceback there before the exit line (playbooks.nodelog reads them).
    """
    from engines.errors import EngineError

    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        sys.stderr.flush()
        os.dup2(descriptor, 2)  # fd 2 itself: what C code and a dying interpreter write reaches the file too
        os.close(descriptor)
    faulthandler.enable(file=sys.stderr, all_threads=True)
    log = NodeLog(name=name, data_dir=data_dir, url=url, eager=log_file is not None)
    try:
        yield log
    except EngineError as exc:
        log.exit("error", exc.exit_code, exc.message)
        raise
    except (KeyboardInterrupt, SystemExit):
        log.exit("clean", 0)
        raise
    except BaseException as exc:
        log.opened()  # a panic is always worth the two lines around its traceback
        traceback.print_exc(file=sys.stderr)
        log.exit("panic", 1, f"{type(exc).__name__}: {exc}")
        raise
    else:
        log.exit(
            "clean" if log.code == 0 else "error", log.code, "" if log.code == 0 else "the node did not start serving"
        )


def run_status(args: argparse.Namespace, output: Output | None = None) -> int:
    out = output_for(args, output)
    with _client(args, args.url) as client:
        health = client.health()
        replication = client.replication()
        peers = client.peers()
    problems = []
    if health.get("status") != "healthy":
        problems.append(f"status {health.get('status')}")
    if health.get("split_brain") or replication.get("split_brain"):
        problems.append("split brain: another primary holds the same epoch")
    if peers.get("isolated"):
        problems.append("isolated: no peer reachable")
    if peers.get("partition"):
        problems.append(f"partition: peers name different primaries {peers.get('primaries_named')}")
    if replication.get("role") == "standby" and (
        replication.get("connected") is False or replication.get("follower_state") in ("needs-reseed", "refused")
    ):
        problems.append(f"standby not following ({replication.get('follower_state')}): {replication.get('last_error')}")
    payload = {
        "url": args.url,
        "ok": not problems,
        "problems": problems,
        "health": health,
        "replication": replication,
        "peers": peers,
    }
    lag = replication.get("lag_seconds")
    lines = [
        f"{health.get('name')} at {args.url}: {'OK' if not problems else 'PROBLEM'} "
        f"({health.get('status')}), {health.get('backend')}, role {health.get('role')}, epoch {health.get('epoch')}, "
        f"last LSN {health.get('last_lsn')}",
    ]
    if replication.get("role") == "standby":
        lines.append(
            f"  following {replication.get('upstream')}: applied {replication.get('applied_lsn')} of "
            f"{replication.get('primary_lsn')}, lag {replication.get('lag_records')} records, "
            f"{replication.get('lag_bytes')} bytes, "
            f"{'?' if lag is None else f'{lag * 1000:.0f} ms'}"
        )
    corruption = health.get("corruption")
    if isinstance(corruption, dict):
        lines.append(
            f"  corrupt since {corruption.get('since')} (found by {corruption.get('found_by')}): "
            f"{corruption.get('file') or 'file unknown'} offset {corruption.get('offset')}: "
            f"{corruption.get('detail')}"
        )
    if health.get("reason") and health.get("status") not in ("healthy", "corrupt"):
        lines.append(f"  {health.get('status')}: {health.get('reason')}")
    reseed = replication.get("reseed")
    if reseed:
        lines.append(
            f"  reseed {reseed.get('state')}: backup {reseed.get('backup_id')} at LSN {reseed.get('lsn')} "
            f"({reseed.get('reason')}); old data dir in {reseed.get('quarantine')}"
        )
    for standby in replication.get("standbys", []):
        lines.append(
            f"  standby {standby['name']} at LSN {standby['applied_lsn']}, lag {standby.get('lag_records')} "
            f"records, {standby.get('lag_seconds')} s"
        )
    for peer in peers.get("peers", []):
        state = (
            f"{peer.get('role')} epoch {peer.get('epoch')}"
            if peer.get("reachable")
            else f"UNREACHABLE ({peer.get('last_error')})"
        )
        lines.append(f"  peer {peer['url']}: {state}")
    lines += [f"  problem: {problem}" for problem in problems]
    out.result(payload, "\n".join(lines))
    return EXIT_OK if not problems else EXIT_PROBLEM


def run_promote(args: argparse.Namespace, output: Output | None = None) -> int:
    out = output_for(args, output)
    with _client(args, args.url) as client:
        result = client.promote()
    changed = result.get("changed")
    text = (
        f"{result.get('name')} at {args.url} is now the primary in epoch {result.get('epoch')} "
        f"(LSN {result.get('last_lsn')})"
        if changed
        else f"{result.get('name')} at {args.url} already is the primary (epoch {result.get('epoch')}); nothing changed"
    )
    out.result(result, text)
    return EXIT_OK


def run_fence(args: argparse.Namespace, output: Output | None = None) -> int:
    out = output_for(args, output)
    if not args.yes:
        return out.error(
            f"fencing {args.url} stops it taking writes; not confirmed",
            hint="add --yes to fence it",
            exit_code=EXIT_REFUSED,
            kind="SafetyRefusal",
        )
    with _client(args, args.url) as client:
        result = client.admin("fence", reason=args.reason, epoch=args.epoch, force=True)
    out.result(result, f"{result.get('name')} at {args.url} is fenced: {result.get('fence_reason')}")
    return EXIT_OK


def run_demote(args: argparse.Namespace, output: Output | None = None) -> int:
    out = output_for(args, output)
    with _client(args, args.url) as client:
        if not args.yes and client.health().get("role") == "primary":
            return out.error(
                f"{args.url} is a primary taking writes; demoting it stops them",
                hint="add --yes to demote it, or fence it first",
                exit_code=EXIT_REFUSED,
                kind="SafetyRefusal",
            )
        result = client.demote(args.follow)
    out.result(result, f"{result.get('name')} at {args.url} is now a standby of {args.follow}")
    return EXIT_OK


def run_rejoin(args: argparse.Namespace, output: Output | None = None) -> int:
    out = output_for(args, output)
    with _client(args, args.url) as client:
        planned = client.admin("rejoin", primary=args.primary, dry_run=True)
        plan = planned.get("plan", {})
        reasons = []
        if plan.get("diverged"):
            reasons.append(
                f"{args.url} holds {plan.get('diverged_records')} record(s) past LSN {plan.get('fork_lsn')} "
                f"that {args.primary} never had; rejoining exports them to JSONL and moves its data dir "
                "to quarantine"
            )
        if planned.get("role") == "primary":
            reasons.append(f"{args.url} is a primary taking writes; rejoining stops them")
        if reasons and not args.yes:
            return out.error(
                "; ".join(reasons),
                hint="review, then add --yes (nothing is deleted)",
                exit_code=EXIT_REFUSED,
                kind="SafetyRefusal",
            )
        result = client.admin("rejoin", primary=args.primary)
    lines = [f"{result.get('name')} at {args.url} is now a standby of {args.primary} (epoch {result.get('epoch')})"]
    if result.get("diverged"):
        export = result.get("export") or {}
        lines.append(
            f"  diverged after LSN {plan.get('fork_lsn')}: {export.get('records')} record(s) exported to "
            f"{export.get('path')}"
        )
        if export.get("missing"):
            lines.append(
                f"  not in its WAL any more (their effect is in the quarantined data dir): "
                f"LSN ranges {export.get('missing')}"
            )
        lines.append(f"  old data dir kept in {result.get('quarantine')}")
    out.result(result, "\n".join(lines))
    return EXIT_OK
