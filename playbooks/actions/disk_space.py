"""A full disk: what is ours to free, what is not ours (reported, never touched), and the verdict.

What fills a disk is often not ours: a runaway log, a core dump, someone's copy. drconsole frees
only what its probes find of its own (``engines.reclaim``: WAL segments the store covers and the
archive holds, dead temp files; quarantine is moved, never deleted) and names the largest other
files for a human to decide on. The verdict says which of three things is true afterwards: space
recovered (under the alert threshold), writes resume but an operator must deal with files that
are not ours, or still full.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engines.errors import LockedError
from engines.reclaim import find_reclaimable, reclaim
from playbooks.actions.base import ActionContext, ActionResult, action
from playbooks.evidence import disk_usage, human_bytes, mount_point
from playbooks.probes.base import DISK_THRESHOLD
from playbooks.probes.node import DISK_FULL_FREE_BYTES

__all__ = ["largest_foreign_files"]


def _same_device(path: Path, device: int) -> bool:
    try:
        return os.lstat(path).st_dev == device
    except OSError:
        return False


def largest_foreign_files(
    data_dir: Path, count: int = 5, max_files: int = 200_000
) -> tuple[list[dict[str, Any]], Path, int]:
    """The ``count`` largest files on ``data_dir``'s filesystem outside it: (files, mount, files seen).

    The walk stays on the filesystem (no other mounts) and stops after ``max_files`` files.
    """
    data_dir = Path(data_dir).resolve()
    root = mount_point(data_dir)
    device = os.stat(root).st_dev
    found: list[tuple[int, str]] = []
    seen = 0
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = [name for name in dirs if (here / name).resolve() != data_dir and _same_device(here / name, device)]
        for name in files:
            seen += 1
            try:
                info = os.lstat(here / name)
            except OSError:
                continue
            found.append((info.st_size, str(here / name)))
        if seen >= max_files:
            break
    found.sort(reverse=True)
    return [{"path": path, "bytes": size} for size, path in found[:count] if size > 0], root, seen


def _listed(files: list[dict[str, Any]]) -> str:
    return ", ".join(f"{entry['path']} ({human_bytes(entry['bytes'])})" for entry in files)


@action("disk.foreign_files", writes=False)
def foreign_files(context: ActionContext, *, count: int = 5, max_files: int = 200_000) -> ActionResult:
    """The largest files on the data dir's filesystem outside the data dir: reported, never touched."""
    largest, root, seen = largest_foreign_files(context.require_data_dir(), int(count), int(max_files))
    for entry in largest:
        context.log(f"{human_bytes(entry['bytes']):>10}  {entry['path']}  (not ours: reported, not touched)")
    summary = (
        f"largest files on {root} outside the data dir: {_listed(largest)}"
        if largest
        else f"no file outside the data dir on {root}"
    )
    return ActionResult(
        True,
        summary + ("" if seen < int(max_files) else f" (first {seen} files only)"),
        {"foreign": largest, "mount": str(root), "files_seen": seen},
    )


@action("disk.reclaim", writes=True)
def reclaim_ours(context: ActionContext) -> ActionResult:
    """Delete what the engine no longer needs (``engines.reclaim``): no byte written, so it works on a full disk."""
    data_dir = context.require_data_dir()
    before = disk_usage(data_dir).free
    try:
        removed = reclaim(data_dir)
    except LockedError:
        waiting = find_reclaimable(data_dir)
        return ActionResult(
            True,
            f"{data_dir} is held by a running process: nothing removed; {len(waiting)} file(s), "
            f"{human_bytes(sum(item.bytes for item in waiting))}, are reclaimable once it flushes",
            {"removed": [], "freed_bytes": 0, "held": True},
        )
    for item in removed:
        context.log(f"removed {item.path} ({human_bytes(item.bytes)}): {item.why}")
    freed = max(0, disk_usage(data_dir).free - before)
    counts = {kind: sum(1 for item in removed if item.kind == kind) for kind in ("wal", "temp")}
    return ActionResult(
        True,
        f"freed {human_bytes(freed)} of our own: {counts['wal']} WAL segment(s) the store covers"
        f"{' and the archive holds' if any('archived' in item.why for item in removed) else ''}, "
        f"{counts['temp']} dead temp file(s)"
        if removed
        else "nothing of ours is reclaimable without writing (no covered, archived WAL segment, no dead temp file)",
        {"removed": [item.to_json() for item in removed], "freed_bytes": freed},
        touched=[item.path for item in removed],
    )


@action("disk.verdict", writes=False)
def verdict(context: ActionContext, *, threshold: float = DISK_THRESHOLD, count: int = 5) -> ActionResult:
    """Sufficient space recovered (under the threshold)? Else manual intervention, naming the files not ours.

    ``outcome``: ``recovered``; ``needs-operator`` (writes resume, at least the write headroom is
    free, but the disk stays over the threshold); ``full`` (writes still fail).
    """
    data_dir = context.require_data_dir()
    found = disk_usage(data_dir)
    threshold = float(threshold)
    data: dict[str, Any] = {
        "ratio": round(found.ratio, 4),
        "free_bytes": found.free,
        "total_bytes": found.total,
        "threshold": threshold,
        "headroom_bytes": DISK_FULL_FREE_BYTES,
    }
    largest, _root, _seen = largest_foreign_files(data_dir, int(count))
    data["foreign"] = largest
    held = f"; the largest files not ours (not touched): {_listed(largest)}" if largest else ""
    if found.ratio <= threshold:
        return ActionResult(
            True, f"sufficient space recovered: {found.sentence(threshold)}{held}", {**data, "outcome": "recovered"}
        )
    if found.free >= DISK_FULL_FREE_BYTES:
        return ActionResult(
            False,
            f"manual intervention required: writes can resume ({human_bytes(found.free)} free) but the disk is "
            f"still {found.ratio * 100:.1f} % used (threshold {threshold * 100:.0f} %), and drconsole has freed "
            f"all it may{held}; an operator decides on them",
            {**data, "outcome": "needs-operator"},
        )
    return ActionResult(
        False,
        f"manual intervention required: still full, {human_bytes(found.free)} free of {human_bytes(found.total)} "
        f"(writes need {human_bytes(DISK_FULL_FREE_BYTES)}), and nothing more of ours is reclaimable{held}",
        {**data, "outcome": "full"},
    )
