"""The safety copy taken before destructive steps, and the rollback that puts it back.

A safety copy is a hard-link snapshot: files the engines never change once written (SSTables,
RocksDB tables, COW snapshots) are hard-linked, everything else is copied, under the data dir's
engine lock, into a staging folder renamed into place when complete. It lives in the run's
quarantine folder (``<data-dir>/.quarantine/run-<id>/safety-copy``), on the same volume, so
links work and nothing leaves the box. Before copying, the free space is checked; a copy that
does not fit is refused unless the responder waives it (the runner audits the waiver).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from engines.base import LOCK_NAME
from engines.errors import SafetyRefusal, map_os_error
from engines.fsutil import QUARANTINE_DIR, fsync_dir, utc_stamp
from playbooks.actions.base import ActionContext, ActionResult, action
from playbooks.actions.exclusive import exclusive
from playbooks.evidence import disk_usage, human_bytes, lock_holders

__all__ = ["copy_plan", "SAFETY_COPY_NAME", "MANIFEST_NAME", "latest_safety_copy"]

SAFETY_COPY_NAME = "safety-copy"
MANIFEST_NAME = "SAFETY-COPY.json"
_SKIP = {LOCK_NAME, "LOCK"}  # lock files: the copy is not a running engine
_SPACE_MARGIN = 0.95  # never plan to use the last 5 % of the free space


def _immutable(relative: Path) -> bool:
    return relative.suffix == ".sst" or (relative.parts[0] == "snapshots" and relative.suffix == ".cow")


def copy_plan(data_dir: Path) -> list[tuple[Path, int, bool]]:
    """(relative path, size, hard-link?) of every file a safety copy takes."""
    plan = []
    for root, dirs, files in os.walk(data_dir):
        relative_root = Path(root).relative_to(data_dir)
        if relative_root == Path("."):
            dirs[:] = [name for name in dirs if name != QUARANTINE_DIR]
        dirs[:] = [name for name in dirs if not name.endswith(".partial")]
        for name in sorted(files):
            if name in _SKIP:
                continue
            relative = relative_root / name
            try:
                size = os.lstat(Path(root) / name).st_size
            except FileNotFoundError:
                continue
            plan.append((relative, size, _immutable(relative)))
    return plan


def _copy_file(source: Path, target: Path, link: bool) -> bool:
    """Copy (or hard-link) one file durably; returns True when it was linked."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if link:
        try:
            os.link(source, target)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
    with open(source, "rb") as reader, open(target, "wb") as writer:
        shutil.copyfileobj(reader, writer, 1 << 20)
        writer.flush()
        os.fsync(writer.fileno())
    shutil.copystat(source, target)
    return False


def _describe_copy(context: ActionContext, *, dest: str | None = None) -> list[str]:
    data_dir = context.require_data_dir()
    target = Path(dest) if dest else (context.quarantine_path or data_dir) / SAFETY_COPY_NAME
    if not data_dir.exists():
        return [f"nothing: {data_dir} does not exist"]
    plan = copy_plan(data_dir)
    copied = sum(size for _, size, link in plan if not link)
    linked = sum(size for _, size, link in plan if link)
    return [
        f"reads {data_dir} ({len(plan)} files)",
        f"writes {target} ({human_bytes(copied)} copied, {human_bytes(linked)} hard-linked)",
    ]


def _transfer(
    source_dir: Path, plan: list[tuple[Path, int, bool]], target_dir: Path, context: ActionContext, phase: str
) -> tuple[int, int]:
    total = sum(size for _, size, _link in plan)
    done = copied = linked = 0
    for relative, size, link in plan:
        if _copy_file(source_dir / relative, target_dir / relative, link):
            linked += size
        else:
            copied += size
        done += size
        context.progress(done, total, "bytes", phase)
    for directory in sorted({(target_dir / relative).parent for relative, _, _ in plan} | {target_dir}):
        fsync_dir(directory)
    return copied, linked


@action("engine.safety_copy", writes=True, describe=_describe_copy)
def safety_copy(context: ActionContext, *, dest: str | None = None, unless_served: bool | str = False) -> ActionResult:
    """Take a hard-link safety copy of the data dir (before anything destructive).

    ``unless_served``: a data dir a live process still holds (a node fenced through its API, or cut
    off on its side of a partition) is not copied (it cannot be, consistently) and the step says so:
    for a playbook whose destructive steps act on other nodes, never on this data dir (failover).
    """
    data_dir = context.require_data_dir()
    if not data_dir.exists():
        return ActionResult(True, f"{data_dir} does not exist: nothing to copy", {"taken": False})
    if str(unless_served).lower() in ("1", "true", "yes"):
        holders = lock_holders(data_dir)
        if holders:
            pid, command = holders[0]
            return ActionResult(
                True,
                f"no copy: pid {pid} still serves {data_dir} ({command[:80]}); nothing here "
                "changes it, and its writes are salvaged from it",
                {"taken": False, "served_by": pid},
            )
    target = Path(dest) if dest else context.quarantine() / SAFETY_COPY_NAME
    if (target / MANIFEST_NAME).exists():
        return ActionResult(True, f"safety copy already taken in {target}", {"taken": True, "path": str(target)})
    plan = copy_plan(data_dir)
    need = sum(size for _, size, link in plan if not link)
    usage = disk_usage(target.parent)
    if need > usage.free * _SPACE_MARGIN:
        raise SafetyRefusal(
            f"no room for a safety copy of {data_dir}: it needs {human_bytes(need)}, {human_bytes(usage.free)} "
            f"free on {usage.mount}",
            hint="free space elsewhere, or waive the copy with --waive-safety-copy (the waiver is audited)",
        )
    staging = target.with_name(target.name + ".partial")
    try:
        with exclusive(data_dir, "take a safety copy"):
            if staging.exists():
                shutil.rmtree(staging)  # our own unfinished copy from a run cut off here
            staging.mkdir(parents=True)
            plan = copy_plan(data_dir)
            copied, linked = _transfer(data_dir, plan, staging, context, "safety copy")
            manifest = {
                "source": str(data_dir),
                "run_id": context.run_id,
                "taken_at": time.time(),
                "files": len(plan),
                "bytes_copied": copied,
                "bytes_linked": linked,
            }
            (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
            fsync_dir(staging)
            os.rename(staging, target)
            fsync_dir(target.parent)
    except OSError as exc:
        raise map_os_error(exc, f"taking a safety copy into {target}") from exc
    return ActionResult(
        True,
        f"safety copy of {data_dir} in {target}: {len(plan)} files, {human_bytes(copied)} "
        f"copied, {human_bytes(linked)} hard-linked",
        {"taken": True, "path": str(target), "files": len(plan), "bytes_copied": copied, "bytes_linked": linked},
        touched=[str(target)],
    )


def latest_safety_copy(context: ActionContext) -> Path | None:
    folder = context.quarantine_path
    if folder is None or not folder.is_dir():
        return None
    copies = sorted(path for path in folder.iterdir() if (path / MANIFEST_NAME).exists())
    return copies[-1] if copies else None


@action("engine.restore_safety_copy", writes=True)
def restore_safety_copy(context: ActionContext, *, source: str | None = None) -> ActionResult:
    """Roll the data dir back to this run's safety copy; what it held goes to quarantine."""
    data_dir = context.require_data_dir()
    copy = Path(source) if source else latest_safety_copy(context)
    if copy is None or not (copy / MANIFEST_NAME).exists():
        raise SafetyRefusal(
            f"no safety copy of this run to roll {data_dir} back to",
            hint="nothing was changed by the rollback; restore from a backup instead",
        )
    aside = context.quarantine() / f"rolled-back-{utc_stamp()}"
    moved: list[str] = []
    try:
        with exclusive(data_dir, "roll back"):
            aside.mkdir(parents=True)
            for item in sorted(data_dir.iterdir()):
                if item.name in (QUARANTINE_DIR, LOCK_NAME):
                    continue
                os.rename(item, aside / item.name)
                moved.append(item.name)
            fsync_dir(aside)
            fsync_dir(data_dir)
            plan = [
                (relative, size, link) for relative, size, link in copy_plan(copy) if relative.name != MANIFEST_NAME
            ]
            _transfer(copy, plan, data_dir, context, "rollback")
    except OSError as exc:
        raise map_os_error(exc, f"rolling {data_dir} back from {copy}") from exc
    details: dict[str, Any] = {"restored_from": str(copy), "set_aside": str(aside), "moved": moved}
    return ActionResult(
        True,
        f"rolled {data_dir} back to the safety copy {copy}; what it held is in {aside}",
        details,
        touched=[str(data_dir), str(aside)],
    )
