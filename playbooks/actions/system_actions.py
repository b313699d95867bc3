"""Host actions: disk and memory usage, what holds the data dir, moving quarantine off a full disk.

Disk space is never freed by deleting data (the guides delete the oldest SSTables and truncate
the WAL): flush and compaction free what the engines no longer need, and quarantine folders can
be moved to another volume (``quarantine_volume``), never deleted. The breakdown says how much
space quarantine holds, so the responder knows what a move would free. What a full disk can have
back at once, the files not ours it reports, and the verdict are in ``disk_space``.

A hung holder of the data dir (stopped, or silent on /health) is resumed first; only one still
hung after the deadline is killed, and the kill is a destructive step (confirmed, audited). The
processes signalled are those holding the data dir's lock, or the one process outside the node that
alone holds the memory above the alert rule, found by sampling every process's RSS
(``playbooks.memory_culprit``): never a process found by name, never one a fault recorded.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from engines.errors import InvalidArgumentError, map_os_error
from engines.fsutil import QUARANTINE_DIR, fsync_dir, tree_size
from playbooks.actions.base import ActionContext, ActionResult, action
from playbooks.evidence import (
    component_sizes,
    disk_usage,
    human_bytes,
    lock_held,
    lock_holders,
    unclean_shutdown,
)
from playbooks.hung import hung_holders
from playbooks.memory_culprit import stop_culprit, survey_memory
from playbooks.probes.base import DISK_THRESHOLD, MEMORY_THRESHOLD

__all__: list[str] = []


@action("disk.usage", writes=False)
def usage(context: ActionContext, *, threshold: float = DISK_THRESHOLD, path: str | None = None) -> ActionResult:
    """Volume usage of the data dir against the alert threshold (85 % by default)."""
    where = Path(path) if path else context.require_data_dir()
    found = disk_usage(where)
    data = {
        "ratio": round(found.ratio, 4),
        "free_bytes": found.free,
        "total_bytes": found.total,
        "mount": str(found.mount),
        "threshold": threshold,
    }
    return ActionResult(found.ratio <= float(threshold), found.sentence(float(threshold)), data)


@action("disk.breakdown", writes=False)
def breakdown(context: ActionContext) -> ActionResult:
    """What the data dir's space goes to (WAL, store, snapshots, quarantine), and what is reclaimable."""
    data_dir = context.require_data_dir()
    sizes = component_sizes(data_dir)
    folders = []
    quarantine = data_dir / QUARANTINE_DIR
    if quarantine.is_dir():
        for item in sorted(quarantine.iterdir()):
            folders.append({"name": item.name, "bytes": tree_size(item)})
    parts = ", ".join(f"{name} {human_bytes(size)}" for name, size in sizes.items() if name != "total")
    note = ""
    if sizes["quarantine"]:
        note = (
            f"; quarantine holds {human_bytes(sizes['quarantine'])} in {len(folders)} folder(s): drconsole never "
            f"deletes it, so it frees no space here; pass --param quarantine_volume=PATH to move it off this volume"
        )
    return ActionResult(
        True,
        f"{data_dir}: {human_bytes(sizes['total'])} ({parts}){note}",
        {"sizes": sizes, "quarantine_folders": folders},
    )


def _move_tree(source: Path, target: Path) -> None:
    """Move ``source`` to ``target`` keeping every byte: rename, or copy + fsync + remove across volumes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(source, target)
        fsync_dir(target.parent)
        return
    except OSError as exc:
        if exc.errno != 18:  # EXDEV: another volume
            raise
    staging = target.with_name(target.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)  # our own unfinished copy; the source is still whole
    shutil.copytree(source, staging, symlinks=True)
    for root, _dirs, files in os.walk(staging):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                os.fsync(handle.fileno())
        fsync_dir(Path(root))
    os.rename(staging, target)
    fsync_dir(target.parent)
    # The copy on the other volume is complete and durable; this removes the original of a move.
    shutil.rmtree(source)


@action("disk.relocate_quarantine", writes=True)
def relocate_quarantine(context: ActionContext, *, volume: str | None) -> ActionResult:
    """Move earlier quarantine folders to another volume (a move, never a delete); this run's stays."""
    if not volume:
        return ActionResult(True, "no quarantine_volume given: quarantine stays where it is", {"moved": []})
    data_dir = context.require_data_dir()
    destination_root = Path(volume)
    if not destination_root.is_dir():
        raise InvalidArgumentError(
            f"quarantine volume {destination_root} is not a directory", hint="create it (on another disk) first"
        )
    quarantine = data_dir / QUARANTINE_DIR
    mine = context.quarantine_path.name if context.quarantine_path else None
    moved: list[dict[str, Any]] = []
    freed = 0
    if quarantine.is_dir():
        label = context.node or data_dir.name
        for item in sorted(quarantine.iterdir()):
            if item.name == mine:
                continue
            size = tree_size(item)
            target = destination_root / label / item.name
            if target.exists():
                raise InvalidArgumentError(f"{target} already exists; not overwriting quarantine")
            try:
                _move_tree(item, target)
            except OSError as exc:
                raise map_os_error(exc, f"moving {item} to {target}") from exc
            moved.append({"from": str(item), "to": str(target), "bytes": size})
            freed += size
    return ActionResult(
        True,
        f"moved {len(moved)} quarantine folder(s), {human_bytes(freed)}, to {destination_root}",
        {"moved": moved, "freed_bytes": freed},
        touched=[str(quarantine), str(destination_root)],
    )


@action("memory.usage", writes=False)
def memory(context: ActionContext, *, threshold: float = MEMORY_THRESHOLD) -> ActionResult:
    """Host memory in use against the alert threshold (90 % by default)."""
    import psutil

    found = psutil.virtual_memory()
    used = found.total - found.available
    ratio = used / found.total if found.total else 0.0
    sentence = (
        f"memory {ratio * 100:.0f} % used ({human_bytes(used)} of {human_bytes(found.total)}); "
        f"threshold {float(threshold) * 100:.0f} %"
    )
    return ActionResult(
        ratio <= float(threshold), sentence, {"ratio": round(ratio, 4), "used_bytes": used, "total_bytes": found.total}
    )


@action("memory.top_processes", writes=False)
def top_processes(context: ActionContext, *, count: int = 10) -> ActionResult:
    """The processes using the most memory (``ps aux --sort=-%mem``)."""
    import psutil

    rows = []
    for process in psutil.process_iter(["pid", "name", "memory_info", "cmdline"]):
        info = process.info
        if info.get("memory_info") is None:
            continue
        rows.append(
            {
                "pid": info["pid"],
                "name": info.get("name") or "?",
                "rss_bytes": info["memory_info"].rss,
                "command": " ".join(info.get("cmdline") or [])[:120],
            }
        )
    rows.sort(key=lambda row: row["rss_bytes"], reverse=True)
    rows = rows[: int(count)]
    for row in rows:
        context.log(f"{row['pid']:>7} {human_bytes(row['rss_bytes']):>10}  {row['name']}")
    top = rows[0] if rows else None
    summary = (
        f"largest: {top['name']} (pid {top['pid']}, {human_bytes(top['rss_bytes'])})" if top else "no processes seen"
    )
    return ActionResult(True, summary, {"processes": rows})


@action("process.inspect", writes=False)
def inspect_process(context: ActionContext) -> ActionResult:
    """Who holds the data dir, and how the last process stopped (crash signs in the WAL, core dumps)."""
    import psutil

    data_dir = context.require_data_dir()
    data: dict[str, Any] = {"running": lock_held(data_dir)}
    if data["running"]:
        holders = lock_holders(data_dir)
        data["holders"] = [{"pid": pid, "command": command} for pid, command in holders]
        hung = hung_holders(data_dir)
        if hung:
            data["crash_type"] = "HUNG"
            data["hung"] = [entry.to_json() for entry in hung]
            return ActionResult(True, "hung: " + "; ".join(entry.sentence(data_dir) for entry in hung), data)
        shown = ", ".join(f"pid {pid}" for pid, _ in holders) or "a process we cannot see"
        data["crash_type"] = "RUNNING"
        return ActionResult(True, f"{data_dir} is held by {shown}: the service is running", data)
    cores = []
    coredump = Path("/var/lib/systemd/coredump")
    if coredump.is_dir():
        try:
            cores = sorted(
                str(path) for path in coredump.iterdir() if "drconsole" in path.name or "python" in path.name
            )
        except OSError:
            cores = []
    data["core_dumps"] = cores[-5:]
    memory = psutil.virtual_memory()
    pressure = (memory.total - memory.available) / memory.total if memory.total else 0.0
    try:
        found = unclean_shutdown(data_dir)
    except Exception as exc:  # noqa: BLE001 - a dir that does not open is evidence too
        data["crash_type"] = "UNKNOWN"
        return ActionResult(True, f"no process holds {data_dir}; it does not open read-only ({exc})", data)
    data.update({"unflushed_records": found.unflushed_records, "torn_tail": found.torn_tail})
    if found.torn_tail or found.unflushed_records:
        data["crash_type"] = "OOM" if pressure > MEMORY_THRESHOLD else "CRASH"
        why = found.torn_tail or f"{found.unflushed_records} WAL records never flushed"
        oom = (
            f"; memory is {pressure * 100:.0f} % used, so an out-of-memory kill is likely"
            if data["crash_type"] == "OOM"
            else ""
        )
        return ActionResult(True, f"the last process on {data_dir} crashed ({why}){oom}", data)
    data["crash_type"] = "CLEAN"
    return ActionResult(True, f"no process holds {data_dir}; the last one closed cleanly", data)


def _wait(condition: Any, deadline: float, step: float = 0.05) -> bool:
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


@action("process.resume", writes=True)
def resume_hung(context: ActionContext, *, deadline_seconds: float = 3.0) -> ActionResult:
    """SIGCONT the hung holders of the data dir and wait (up to the deadline) until they serve again."""
    data_dir = context.require_data_dir()
    hung = hung_holders(data_dir)
    if not hung:
        return ActionResult(True, f"no hung process holds {data_dir}", {"back": True, "resumed": []})
    clock = time.monotonic()
    for entry in hung:
        try:
            os.kill(entry.pid, signal.SIGCONT)
            context.log(f"SIGCONT sent to pid {entry.pid} ({entry.reason})")
        except ProcessLookupError:
            context.log(f"pid {entry.pid} is gone already")
    back = _wait(lambda: not hung_holders(data_dir), clock + float(deadline_seconds))
    seconds = time.monotonic() - clock
    pids = [entry.pid for entry in hung]
    if back:
        return ActionResult(
            True,
            f"resumed pid {', '.join(map(str, pids))}: serving again after {seconds:.2f} s",
            {"back": True, "resumed": pids, "seconds": seconds},
            touched=[f"pid {pid}" for pid in pids],
        )
    still = hung_holders(data_dir)
    return ActionResult(
        True,
        f"still hung {seconds:.1f} s after SIGCONT: " + "; ".join(entry.sentence(data_dir) for entry in still),
        {"back": False, "resumed": pids, "seconds": seconds, "hung": [e.to_json() for e in still]},
        touched=[f"pid {pid}" for pid in pids],
    )


@action("process.kill_hung", writes=True)
def kill_hung(context: ActionContext, *, release_seconds: float = 10.0) -> ActionResult:
    """SIGKILL the holders of the data dir that are still hung, and wait until the lock is free.

    Nothing on disk changes: with sync durability every acknowledged write is in the WAL, which
    the restart replays. Only processes still hung now are killed (one that came back is spared).
    """
    data_dir = context.require_data_dir()
    hung = hung_holders(data_dir)
    killed = []
    for entry in hung:
        try:
            os.kill(entry.pid, signal.SIGKILL)
            killed.append(entry.pid)
            context.log(f"SIGKILL sent to pid {entry.pid} ({entry.command[:80]}): {entry.reason}", "warning")
        except ProcessLookupError:
            continue
    released = _wait(lambda: not lock_held(data_dir), time.monotonic() + float(release_seconds))
    if not released:
        raise InvalidArgumentError(
            f"the lock of {data_dir} is still held {release_seconds:g} s after the kill",
            hint="look for another process holding it (lsof drconsole.lock)",
        )
    summary = (
        f"killed pid {', '.join(map(str, killed))}; the lock of {data_dir} is free"
        if killed
        else f"no hung process left on {data_dir}; nothing killed"
    )
    return ActionResult(True, summary, {"killed": killed}, touched=[f"pid {pid}" for pid in killed])


@action("memory.stop_culprit", writes=True)
def stop_memory_culprit(
    context: ActionContext, *, threshold: float = MEMORY_THRESHOLD, sample_seconds: float = 1.0
) -> ActionResult:
    """Stop the process outside the node that alone holds the memory above the alert rule.

    Found by probing (``playbooks.memory_culprit``): every process's RSS sampled twice, the largest
    one we may stop (not the node, not a node of the fleet, not pid 1, not us) whose RSS is at
    least the excess. None qualifies: nothing is stopped, the top processes are reported.
    """
    view = survey_memory(context.data_dir, threshold=float(threshold), sample_seconds=float(sample_seconds))
    for entry in view.largest:
        context.log(
            f"{entry.pid:>7} {human_bytes(entry.rss_bytes):>10} growth {human_bytes(max(0, entry.growth_bytes))}"
            f"  {entry.name}" + (f"  (spared: {view.spared[entry.pid]})" if entry.pid in view.spared else "")
        )
    data: dict[str, Any] = {
        "excess_bytes": view.excess_bytes,
        "largest": [entry.to_json() for entry in view.largest],
        "spared": {str(pid): why for pid, why in view.spared.items()},
    }
    if view.excess_bytes == 0:
        return ActionResult(
            True,
            f"memory is under the rule ({float(threshold) * 100:.0f} %): nothing stopped",
            {**data, "stopped": None},
        )
    if view.culprit is None:
        return ActionResult(True, view.sentence() + ": nothing stopped", {**data, "stopped": None})
    culprit = view.culprit
    freed = stop_culprit(culprit)
    context.log(
        f"SIGTERM sent to pid {culprit.pid} ({culprit.command[:80]}): {human_bytes(culprit.rss_bytes)} resident",
        "warning",
    )
    return ActionResult(
        True,
        f"stopped {view.sentence()}; {human_bytes(freed)} freed",
        {**data, "stopped": culprit.to_json(), "freed_bytes": freed},
        touched=[f"pid {culprit.pid}"],
    )


@action("system.sync", writes=False)
def sync(context: ActionContext) -> ActionResult:
    """Flush every file system buffer to disk (``sync``)."""
    os.sync()
    return ActionResult(True, "file system buffers synced")


@action("manual.note", writes=False)
def note(context: ActionContext, *, message: str) -> ActionResult:
    """A step a human does (network isolation, DNS): logged for the responder and the timeline."""
    context.log(f"MANUAL: {message}", "warning")
    return ActionResult(True, f"manual step: {message}", {"manual": True})


@action("triage.run", writes=False)
def triage_run(context: ActionContext) -> ActionResult:
    """Walk the decision tree on the data dir and log the path and the recommendation."""
    from playbooks.triage import triage

    result = triage(
        data_dir=context.data_dir,
        node=context.node,
        repo=Path(context.params["repo"]) if context.params.get("repo") else None,
    )
    for entry in result.path:
        context.log(
            f"{entry.question} {'yes' if entry.answer else 'no' if entry.answer is False else 'unknown'}: "
            f"{entry.evidence}"
        )
    if result.unknown is not None:
        return ActionResult(
            True,
            f"triage stops at a question it cannot answer here: {result.unknown.question} "
            f"({result.unknown.evidence}); answer it: drconsole triage --override "
            f"{result.unknown.node}=yes|no",
            result.to_json(),
        )
    if result.fault is None:
        return ActionResult(True, "triage found no fault: monitor", result.to_json())
    return ActionResult(
        True,
        f"triage: {result.fault} ({result.severity}); recommends {', '.join(result.recommended)}",
        result.to_json(),
    )


@action("ransomware.scan", writes=False)
def ransomware_scan(context: ActionContext) -> ActionResult:
    """List encrypted-looking files and ransom notes in the data dir (the guide's find -name '*.locked')."""
    from playbooks.probes.local import ransomware_files

    data_dir = context.require_data_dir()
    found = ransomware_files(data_dir)
    for name in found[:20]:
        context.log(f"suspicious: {name}", "warning")
    if found:
        return ActionResult(False, f"{len(found)} suspicious file(s) in {data_dir}, e.g. {found[0]}", {"files": found})
    return ActionResult(True, f"no encrypted-looking files or ransom notes in {data_dir}", {"files": []})
