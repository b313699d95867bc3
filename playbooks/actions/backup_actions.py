"""Actions over ``engines.backup``: create, verify, list, restore and point-in-time recovery.

The repository is the step's ``repo`` argument, usually ``{repo}``: the playbook parameter, which
the CLI fills from ``--param repo=PATH`` or the node's configured ``backup_repo``. A restore into
the live data dir replaces it only as ``restore_backup`` does: built beside it, swapped in whole,
the old dir moved to ``<parent>/.quarantine/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engines.errors import InvalidArgumentError
from playbooks.actions.base import ActionContext, ActionResult, action
from playbooks.evidence import human_bytes

__all__ = ["describe_repo"]


def _repo(repo: str | None) -> str:
    if not repo:
        raise InvalidArgumentError(
            "no backup repository given", hint="pass --param repo=PATH, or set backup_repo for the node in the config"
        )
    return str(repo)


def _progress(context: ActionContext) -> Any:
    def forward(event: Any) -> None:
        context.progress(int(event.done), int(event.total), str(event.unit), str(event.phase))

    return forward


def describe_repo(context: ActionContext, **args: Any) -> list[str]:
    repo = args.get("repo")
    if repo is None:
        return ["(needs --param repo=PATH)"]
    if args.get("dest") or args.get("into"):
        return [f"reads {repo}", f"writes {args.get('dest') or args.get('into')}"]
    return [f"reads {context.target()}", f"writes {repo}"]


@action("backup.create", writes=True, describe=describe_repo)
def create(context: ActionContext, *, repo: str | None, incremental: bool = False) -> ActionResult:
    """Take a full backup (or an incremental one: the sealed WAL since the last) into the repository."""
    from engines.backup import create_backup

    result = create_backup(
        _repo(repo), data_dir=context.require_data_dir(), incremental=bool(incremental), progress=_progress(context)
    )
    data = result.to_json()
    if result.backup_id is None:
        return ActionResult(True, "incremental backup: no new WAL since the last backup", data)
    return ActionResult(
        True,
        f"{result.type} backup {result.backup_id}: LSN {result.lsn_start}..{result.lsn_end}, "
        f"{human_bytes(result.size_bytes)} in {result.duration_seconds:.1f} s",
        data,
        touched=[str(result.path)],
    )


@action("backup.verify", writes=True, describe=describe_repo)
def verify(
    context: ActionContext, *, repo: str | None, reference: str | None = None, quick: bool = False
) -> ActionResult:
    """Re-read every checksum of the repository (or of one backup) without restoring; records the outcome."""
    from engines.backup import verify_repository

    result = verify_repository(_repo(repo), reference, quick=bool(quick), progress=_progress(context))
    data = result.to_json()
    problems = result.problems
    what = f"backup {reference}" if reference else f"repository {repo}"
    if result.ok:
        return ActionResult(
            True,
            f"{what} verified: {len(result.backups)} backup(s), every checksum matches; "
            f"recoverable window: {result.window or 'none'}",
            data,
        )
    first = problems[0] if problems else None
    detail = f": {first.detail}" if first is not None else ""
    return ActionResult(False, f"{what} has {len(problems)} problem(s){detail}", data)


@action("backup.list", writes=False)
def listing(context: ActionContext, *, repo: str | None) -> ActionResult:
    """List the backups in the repository, newest last, with the recoverable window."""
    from engines.backup import list_backups

    found = list_backups(_repo(repo))
    data = found.to_json()
    fulls = [entry for entry in found.backups if entry.get("type") == "full"]
    if not fulls:
        return ActionResult(False, f"no full backup in {repo}", data)
    newest = fulls[-1]
    return ActionResult(
        True,
        f"{len(found.backups)} backup(s); newest full {newest['backup_id']} "
        f"({newest.get('age_seconds', 0) / 3600:.1f} h old); window: {found.window}",
        {**data, "newest_full": newest["backup_id"], "newest_age_seconds": newest.get("age_seconds")},
    )


def _restore(
    context: ActionContext,
    repo: str | None,
    target: Path,
    reference: str | None,
    until: str | None,
    until_lsn: int | str | None,
    replace: bool,
    to_end: bool = False,
) -> ActionResult:
    from engines.backup import parse_iso_utc, restore_backup

    until_ns = parse_iso_utc(until) if until else None
    lsn = int(until_lsn) if until_lsn not in (None, "") else None
    if lsn is not None and until_ns is not None:
        raise InvalidArgumentError("give a time or an LSN to recover to, not both")
    result = restore_backup(
        _repo(repo),
        target,
        reference=reference if reference not in (None, "") else None,
        until_ns=until_ns,
        until_lsn=lsn,
        replace=replace,
        progress=_progress(context),
        to_end=to_end,
    )
    data = result.to_json()
    if replace:  # the live data dir now holds every write up to the restored LSN (playbooks.accounting)
        data["recovered_lsn_ranges"] = [[0, int(result.lsn)]]
    aside = f"; the previous data dir is in {result.quarantine}" if result.quarantine else ""
    point = f", replayed {result.replayed_records} WAL records" if result.replayed_records else ""
    return ActionResult(
        True,
        f"restored {result.backup_id} into {target} at LSN {result.lsn}{point}{aside}",
        data,
        touched=[str(target)] + ([str(result.quarantine)] if result.quarantine else []),
    )


@action("backup.restore", writes=True, describe=describe_repo)
def restore(
    context: ActionContext,
    *,
    repo: str | None,
    reference: str | None = None,
    until: str | None = None,
    until_lsn: int | str | None = None,
    dest: str | None = None,
    to_end: bool = False,
) -> ActionResult:
    """Restore a backup (and replay archived WAL to ``until``/``until_lsn``) into the data dir or ``dest``.

    ``to_end``: no target given, replay the archived WAL to its end (a lost host's newest state).
    Restoring over the live data dir replaces it; the old one moves to quarantine, never deleted.
    """
    target = Path(dest) if dest else context.require_data_dir()
    return _restore(context, repo, target, reference, until, until_lsn, replace=dest is None, to_end=to_end)


@action("backup.restore_scratch", writes=True, describe=describe_repo)
def restore_scratch(
    context: ActionContext,
    *,
    repo: str | None,
    into: str,
    reference: str | None = None,
    until: str | None = None,
    until_lsn: int | str | None = None,
) -> ActionResult:
    """Restore into a new directory ``into`` (a PITR or drill copy), never over anything."""
    target = Path(into)
    if target.exists() and context.resuming and any(target.iterdir()):
        return ActionResult(True, f"{target} was restored before the run was cut off", {"data_dir": str(target)})
    return _restore(context, repo, target, reference, until, until_lsn, replace=False)
