"""``drconsole backup ...``: create, list, verify, restore, prune and schedule backups.

``register(subparsers, common)`` adds the ``backup`` command to the main parser and sets
``func`` on each sub-command; ``func(args, output=None) -> int`` runs it and returns the exit code
(errors are raised and rendered by ``console.cli.main``, as for every command). This module imports
only the standard library at import time: building the parser must stay cheap.

Progress bars go to stderr, only when stderr is a terminal and ``--json`` is off.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from console.cli.common import CommandGroup, absolute_path, repository, whole_number
from console.output import EXIT_OK, EXIT_PROBLEM, Output, output_for

TIER_CHOICES = ("daily", "weekly", "monthly")

__all__ = ["register", "run_create", "run_list", "run_verify", "run_restore", "run_prune", "run_schedule"]


def register(subparsers: Any, common: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Add ``backup`` and its sub-commands to ``subparsers`` (the main parser's command list)."""
    backup = CommandGroup(subparsers, "backup", "back up, verify, restore and recover to a point in time", common)

    def add(name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
        return backup.add(name, help_text, _with_access(func))

    def repo(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--repo",
            required=True,
            type=repository,
            metavar="R",
            help="the backup repository: a directory, or sftp://USER@HOST[:PORT]/PATH",
        )
        parser.add_argument(
            "--ssh-key",
            type=absolute_path,
            metavar="FILE",
            help="private key for an sftp:// repository (default: ~/.ssh/config, "
            "IdentityFile and the default keys, as ssh does)",
        )
        parser.add_argument(
            "--encrypt-key",
            type=absolute_path,
            metavar="FILE",
            help="32-byte key file: archives and archived WAL are stored AES-256-GCM encrypted; "
            "restore and verify of an encrypted repository need it",
        )
        parser.add_argument(
            "--sign-key",
            type=absolute_path,
            metavar="FILE",
            help="ed25519 key (ssh-keygen -t ed25519): create signs each backup with it; verify "
            "and restore (private or .pub) pin the key the repository must record",
        )

    create = add(
        "create",
        "take a hot full backup (or, with --incremental, archive the sealed WAL); a data dir "
        "a running node serves is backed up by that node (its admin API, found through "
        "node-agent.json in the data dir)",
        run_create,
    )
    create.add_argument("--data-dir", required=True, type=absolute_path, metavar="D")
    repo(create)
    create.add_argument(
        "--incremental",
        action="store_true",
        help="seal the WAL segment being written and archive every segment not archived yet",
    )
    create.add_argument(
        "--copy",
        dest="copies",
        action="append",
        type=repository,
        default=[],
        metavar="R2",
        help="also keep every backup and archived WAL segment in R2 (recorded in the repository: "
        "later writers copy there too; repeatable)",
    )
    listing = add("list", "every backup with its age, size, LSNs and verified state", run_list)
    repo(listing)
    listing.add_argument(
        "--from", dest="tier", choices=TIER_CHOICES, metavar="TIER", help="only this tier: daily, weekly or monthly"
    )
    listing.add_argument("--date", metavar="YYYY-MM-DD", help="only backups taken on this date (UTC)")
    verify = add(
        "verify",
        "check every checksum without restoring (no ID: everything; an ID: what restoring "
        "it needs); exit 1 on a problem",
        run_verify,
    )
    repo(verify)
    verify.add_argument("backup_id", nargs="?", metavar="ID|latest")
    verify.add_argument("--quick", action="store_true", help="sizes and metadata only; read no data")
    restore = add(
        "restore",
        "restore a backup into a new data dir, or recover to a point in time (--until / --until-lsn)",
        run_restore,
    )
    repo(restore)
    restore.add_argument("backup_id", nargs="?", metavar="ID|latest")
    restore.add_argument(
        "--from",
        dest="tier",
        choices=TIER_CHOICES,
        metavar="TIER",
        help="the newest full backup of this tier (daily, weekly, monthly) instead of an ID",
    )
    restore.add_argument(
        "--date", metavar="YYYY-MM-DD", help="with --from (or alone): the newest full backup taken on this date (UTC)"
    )
    restore.add_argument("--data-dir", required=True, type=absolute_path, metavar="D2")
    target = restore.add_mutually_exclusive_group()
    target.add_argument("--until", metavar="ISO8601", help="recover to this time (UTC when no zone is given)")
    target.add_argument("--until-lsn", type=whole_number, metavar="N", help="recover to this LSN")
    restore.add_argument(
        "--replace",
        action="store_true",
        help="restore over an existing data dir; the old one moves to <parent>/.quarantine/",
    )
    prune = add(
        "prune",
        "apply retention (default 7 daily, 4 weekly, 12 monthly); without --yes, only print what would be removed",
        run_prune,
    )
    repo(prune)
    prune.add_argument("--keep-daily", type=whole_number, default=7, metavar="N")
    prune.add_argument("--keep-weekly", type=whole_number, default=4, metavar="N")
    prune.add_argument("--keep-monthly", type=whole_number, default=12, metavar="N")
    prune.add_argument("--yes", action="store_true", help="remove the backups the policy drops")
    schedule = add(
        "schedule",
        "print (with --install: write) a systemd timer + service and the cron line for daily backups",
        run_schedule,
    )
    schedule.add_argument("--data-dir", required=True, type=absolute_path, metavar="D")
    repo(schedule)
    schedule.add_argument("--on-calendar", default="*-*-* 02:00:00", metavar="SPEC", help="systemd OnCalendar")
    schedule.add_argument("--cron", default="0 2 * * *", metavar="SPEC", help="cron schedule (5 fields)")
    schedule.add_argument("--name", metavar="UNIT", help="unit name (default drconsole-backup-<dir name>)")
    schedule.add_argument("--install", action="store_true", help="write the unit files")
    schedule.add_argument("--unit-dir", type=absolute_path, default=Path("/etc/systemd/system"), metavar="DIR")
    return backup.parser


def _with_access(func: Any) -> Any:
    """``func`` run with the repository access options of its command line (``--ssh-key``)."""

    def run(args: argparse.Namespace, output: Output | None = None) -> int:
        settings = {name: getattr(args, name, None) for name in ("ssh_key", "encrypt_key", "sign_key")}
        if getattr(args, "copies", None):
            settings["copies"] = tuple(str(copy) for copy in args.copies)
        if not any(settings.values()):
            return int(func(args, output))
        from engines.backup.mirror import access

        with access(**settings):
            return int(func(args, output))

    run.__name__ = run.__qualname__ = getattr(func, "__name__", "run")
    run.__doc__ = func.__doc__
    return run


class _ProgressBar:
    """A rich progress bar on stderr, one task per phase; inert unless stderr is a terminal."""

    _LABELS = {"pack": "packing", "verify": "verifying", "restore": "unpacking", "replay": "replaying WAL"}

    def __init__(self, enabled: bool) -> None:
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[amount]}"),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
            transient=True,
        )

    def __enter__(self) -> _ProgressBar:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    @property
    def callback(self) -> Any:
        return None if self._progress is None else self._update

    def _update(self, event: Any) -> None:
        if event.unit == "bytes":
            amount = f"{event.done / 1e6:.1f}/{event.total / 1e6:.1f} MB  {event.rate / 1e6:.0f} MB/s"
        else:
            amount = f"{event.done}/{event.total} {event.unit}"
        task = self._tasks.get(event.phase)
        if task is None:
            label = self._LABELS.get(event.phase, event.phase)
            task = self._tasks[event.phase] = self._progress.add_task(label, total=event.total or None, amount=amount)
        self._progress.update(task, completed=event.done, total=event.total or None, amount=amount)


def _progress(args: argparse.Namespace) -> _ProgressBar:
    return _ProgressBar(sys.stderr.isatty() and not getattr(args, "json", False))


# ------------------------------------------------------------------------ create / list
def _through_node(args: argparse.Namespace) -> dict[str, Any] | None:
    """A data dir a running node holds: the node takes the backup (its admin API); else None.

    The node left ``node-agent.json`` in the data dir (its URL and token file); the backup it
    takes is the same hot backup of the open engine, so the shipped timer works on live nodes.
    """
    from engines.locking import SERVING_MARKER_NAME

    if not (Path(args.data_dir) / SERVING_MARKER_NAME).exists():
        return None  # no node serves it: the imports below cost more than most backups
    from engines.node.client import NodeClient, read_token_file
    from playbooks.agent.marker import serving_node

    serving = serving_node(args.data_dir)
    if serving is None:
        return None
    token = read_token_file(serving.token_file) if serving.token_file else None
    with NodeClient(serving.url, token=token, timeout=3600.0) as client:
        answer = client.admin("backup", repo=str(args.repo), incremental=bool(args.incremental))
    answer.pop("action", None)
    answer.pop("ok", None)
    return {**answer, "through_node": {"name": serving.name, "url": serving.url}}


def run_create(args: argparse.Namespace, output: Output | None = None) -> int:
    from engines.backup import create_backup
    from engines.backup.metadata import size_readable

    out = output_for(args, output)
    payload = _through_node(args)
    if payload is not None:
        node = payload["through_node"]
        where = f" (taken by node {node['name']} at {node['url']}, which serves it)"
        if payload.get("backup_id") is None:
            text = f"incremental backup of {args.data_dir}: nothing new to archive{where}"
        else:
            text = (
                f"{payload.get('type')} backup {payload['backup_id']} of {args.data_dir}{where}: "
                f"{size_readable(int(payload.get('size_bytes') or 0))}, LSN {payload.get('lsn_start')}.."
                f"{payload.get('lsn_end')}\n  {payload.get('path')}"
            )
        out.result(payload, text)
        return EXIT_OK
    with _progress(args) as bar:
        result = create_backup(args.repo, data_dir=args.data_dir, incremental=args.incremental, progress=bar.callback)
    payload = result.to_json()
    if result.backup_id is None:
        text = f"incremental backup of {args.data_dir}: nothing new to archive (WAL ends at LSN {result.lsn_end})"
    else:
        archived = (
            f"{result.archived_segments} WAL segment(s) archived, "
            if result.type == "full"
            else f"the WAL archived since the last backup ({result.archived_segments} segment(s) by this run), "
        )
        text = (
            f"{result.type} backup {result.backup_id} ({result.tier}) of {args.data_dir}: "
            f"{size_readable(result.size_bytes)}, LSN {result.lsn_start}..{result.lsn_end}, "
            f"{archived}{result.duration_seconds:.2f} s\n  {result.path}"
        )
    for copy in result.copies:
        text += (
            f"\n  copy {copy['repo']}: {copy['files_copied']} file(s) copied"
            if copy["ok"]
            else f"\n  copy {copy['repo']}: FAILED: {copy['error']}"
        )
    out.result(payload, text)
    return EXIT_OK if all(copy["ok"] for copy in result.copies) else EXIT_PROBLEM


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def run_list(args: argparse.Namespace, output: Output | None = None) -> int:
    from engines.backup import list_backups

    out = output_for(args, output)
    listing = list_backups(args.repo, tier=args.tier, on_date=_date(args))
    rows = [("ID", "TYPE", "TIER", "AGE", "SIZE", "LSN", "VERIFIED", *(("COPIES",) if listing.copies else ()))]
    for item in listing.backups:
        if item.get("error"):
            rows.append(
                (
                    item["backup_id"],
                    "?",
                    item["tier"],
                    "-",
                    "-",
                    "-",
                    "unreadable: " + item["error"],
                    *(("-",) if listing.copies else ()),
                )
            )
            continue
        where = (f"{len(item['locations']) - 1}/{len(listing.copies)}",) if listing.copies else ()
        rows.append(
            (
                item["backup_id"],
                item["type"],
                item["tier"],
                _age(item["age_seconds"]),
                item["size_readable"],
                f"{item['lsn_start']}..{item['lsn_end']}",
                "yes" if item["verified"] else item["restorability"].lower(),
                *where,
            )
        )
    widths = [max(len(str(row[column])) for row in rows) for column in range(len(rows[0]))]
    lines = ["  ".join(str(value).ljust(width) for value, width in zip(row, widths)).rstrip() for row in rows]
    if len(rows) == 1:
        which = ", ".join(part for part in (args.tier, f"taken on {args.date}" if args.date else "") if part)
        lines = [f"no backups{f' ({which})' if which else ''} in {listing.repo}"]
    wal = (
        f"WAL archive: {listing.wal_segments} segment(s), LSN {listing.wal_first_lsn}..{listing.wal_last_lsn}"
        if listing.wal_segments
        else "WAL archive: empty"
    )
    lines += [wal, f"recoverable window: {listing.window}"]
    for copy in listing.copies:
        lines.append(
            f"copy {copy['repo']}: " + (f"{copy['backups']} backup(s)" if copy["reachable"] else "UNREACHABLE")
        )
    out.result(listing.to_json(), "\n".join(lines))
    return EXIT_OK


# ------------------------------------------------------------------------ verify
def run_verify(args: argparse.Namespace, output: Output | None = None) -> int:
    from engines.backup import verify_repository

    out = output_for(args, output)
    with _progress(args) as bar:
        result = verify_repository(args.repo, args.backup_id, quick=args.quick, progress=bar.callback)
    mode = "quick check" if args.quick else "verified"
    if result.ok:
        wal = ""
        if result.wal is not None and result.wal.segments:
            wal = f", WAL archive LSN {result.wal.first_lsn}..{result.wal.last_lsn} without gaps"
        text = f"ok: {len(result.backups)} backup(s) {mode}{wal}\nrecoverable window: {result.window}"
    else:
        problems = result.problems
        lines = [f"FAILED: {len(problems)} problem(s) in {args.repo}"]
        for problem in problems:
            lines.append(f"  {problem.kind}: {problem.file or '-'}: {problem.detail}")
        if result.wal is not None and result.wal.missing:
            ranges = ", ".join(f"{a}..{b}" for a, b in result.wal.missing)
            lines.append(f"  missing WAL: LSN {ranges}")
        text = "\n".join(lines)
    out.result(result.to_json(), text)
    return EXIT_OK if result.ok else EXIT_PROBLEM


# ------------------------------------------------------------------------ restore
def _date(args: argparse.Namespace) -> Any:
    if args.date is None:
        return None
    from engines.backup.repository import parse_backup_date

    return parse_backup_date(args.date)


def run_restore(args: argparse.Namespace, output: Output | None = None) -> int:
    from engines.backup import parse_iso_utc, restore_backup

    out = output_for(args, output)
    until_ns = parse_iso_utc(args.until) if args.until is not None else None
    on_date = _date(args)
    if (args.tier is not None or on_date is not None) and args.backup_id not in (None, "latest"):
        from engines.errors import InvalidArgumentError

        raise InvalidArgumentError("name a backup ID or --from/--date, not both")
    with _progress(args) as bar:
        result = restore_backup(
            args.repo,
            args.data_dir,
            reference=args.backup_id,
            until_ns=until_ns,
            until_lsn=args.until_lsn,
            replace=args.replace,
            progress=bar.callback,
            tier=args.tier,
            on_date=on_date,
        )
    payload = result.to_json()
    what = "recovered" if result.type == "pitr" else "restored"
    text = (
        f"{what} {args.data_dir} from {result.backup_id}: LSN {result.lsn}"
        + (f" ({payload['timestamp']})" if payload["timestamp"] else "")
        + (f", {result.replayed_records} WAL record(s) replayed" if result.type == "pitr" else "")
        + f", {result.duration_seconds:.2f} s"
    )
    if result.quarantine is not None:
        text += f"\n  the previous data dir is in {result.quarantine}"
    out.result(payload, text)
    return EXIT_OK


# ------------------------------------------------------------------------ prune / schedule
def run_prune(args: argparse.Namespace, output: Output | None = None) -> int:
    from engines.backup import RetentionPolicy, prune_repository

    out = output_for(args, output)
    policy = RetentionPolicy(daily=args.keep_daily, weekly=args.keep_weekly, monthly=args.keep_monthly)
    plan = prune_repository(args.repo, policy, confirm=args.yes)
    verb = "removed" if plan.done else "would remove"
    lines = [f"{verb}: {decision.backup_id} ({decision.tier}): {decision.reason}" for decision in plan.removed]
    if plan.wal_segments:
        lines.append(f"{verb}: {len(plan.wal_segments)} archived WAL segment(s) ({plan.wal_bytes} bytes)")
    lines += [f"kept: {decision.backup_id} ({decision.tier}): {decision.reason}" for decision in plan.kept]
    if not plan.removed and not plan.wal_segments:
        lines.insert(0, "nothing to prune")
    elif not plan.done:
        lines.append("dry run: nothing was removed; re-run with --yes to prune")
    out.result(plan.to_json(), "\n".join(lines))
    return EXIT_OK


def run_schedule(args: argparse.Namespace, output: Output | None = None) -> int:
    from engines.backup import build_schedule, install_schedule

    out = output_for(args, output)
    options = [
        word
        for flag, value in (
            ("--ssh-key", args.ssh_key),
            ("--encrypt-key", args.encrypt_key),
            ("--sign-key", args.sign_key),
        )
        if value is not None
        for word in (flag, str(value))
    ]
    schedule = build_schedule(
        args.data_dir, args.repo, on_calendar=args.on_calendar, cron=args.cron, name=args.name, repo_options=options
    )
    payload = schedule.to_json()
    text = (
        f"# {schedule.service_name}\n{schedule.service}\n# {schedule.timer_name}\n{schedule.timer}\n"
        f"# or, with cron:\n{schedule.cron}\n"
    )
    if args.install:
        written = install_schedule(schedule, args.unit_dir)
        payload["installed"] = [str(path) for path in written]
        text = "wrote " + ", ".join(str(path) for path in written) + f"\nenable it with: {schedule.enable_command()}"
    out.result(payload, text)
    return EXIT_OK
