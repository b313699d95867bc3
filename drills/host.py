"""Drills of host faults: a full disk and memory pressure, on a data dir without a node.

- ``disk-full``: the data dir is a folder of its own small tmpfs (a real filesystem: ENOSPC comes
  from the kernel). The load runs as in production: the WAL archived into the backup repository
  and its newest 64 segments (256 KiB each) kept for standbys. The fault fills the filesystem with
  a file next to the data dir, not in it: not ours, and nothing records it where recovery looks. A
  writer process then writes until the engine refuses with DiskFullError (what it acknowledged is
  ledgered). The autopilot frees only what its probes find of ours (covered, archived WAL; dead
  temp files; quarantine moved to a volume on the sandbox's real disk) and reports the largest
  files that are not ours. Passed = the engine serves writes again with the write headroom free,
  within the targets, nothing acknowledged lost and the foreign file untouched; the disk then
  stays over the alert threshold (the foreign file is still there), so the playbook ends in
  "manual intervention required" and the result says ``outcome: needs-operator`` with the files
  an operator must decide on. Where mounting is not permitted the drill fails saying so.
- ``memory-pressure``: a 4 GiB hog next to the engine. The sandbox's memory alert rule is the
  used memory before the fault plus half the hog, so the probe sees the hog and only the hog on a
  shared machine; healthy again = the engine serves and memory is back under that rule. Recovery
  finds the hog by sampling every process's RSS (``playbooks.memory_culprit``), not by the fault's
  record; ``hog_stopped_by_recovery`` says whether the playbook, not the drill's cleanup, stopped it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil

from drills import DrillResult, Sandbox, Scenario, autopilot, healthy, met_targets, record_rpo
from drills.node import ROOT
from faults.local import MountRefused, sandbox_tmpfs, stop_memory_hogs
from playbooks.actions.disk_space import largest_foreign_files
from playbooks.evidence import disk_usage
from playbooks.probes.base import DISK_THRESHOLD
from playbooks.probes.node import DISK_FULL_FREE_BYTES

__all__ = ["host_drill", "TMPFS_MEGABYTES", "HOG_MEGABYTES"]

TMPFS_MEGABYTES = 64
# The WAL a production node keeps for its standbys (archived, covered by the store): what a full
# disk can have back at once. Values of 32 KiB give the fast drill's 200 writes 6 MiB of it.
DISK_DRILL_ENGINE = {"wal_segment_bytes": 256 * 1024, "wal_keep_segments": 64}
DISK_DRILL_VALUE_SIZE = 32 * 1024
HOG_MEGABYTES = 4096  # big against the noise of a shared host: others come and go by a GiB
Log = Callable[[str], None] | None


def _used_ratio() -> float:
    memory = psutil.virtual_memory()
    return (memory.total - memory.available) / memory.total if memory.total else 0.0


def host_drill(
    scenario: Scenario,
    engine: str,
    sandbox: Sandbox,
    result: DrillResult,
    *,
    writes_before_backup: int,
    writes_after_backup: int,
    value_size: int,
    seed: int,
    log: Log,
) -> None:
    if scenario.host == "disk":
        _disk_full(scenario, engine, sandbox, result, writes_before_backup, writes_after_backup, value_size, seed, log)
    elif scenario.host == "memory":
        _memory_pressure(
            scenario, engine, sandbox, result, writes_before_backup, writes_after_backup, value_size, seed, log
        )
    else:
        raise ValueError(f"no host drill {scenario.host!r}")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _write_under_fault(data_dir: Path, ledger_path: Path, start: int, count: int = 2000) -> dict[str, Any]:
    """A writer process that goes on writing on the full disk: what it acked, and how it was refused."""
    done = subprocess.run(
        [sys.executable, "-m", "drills.writer", str(data_dir), str(ledger_path), str(start), str(count)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"error": f"the writer exited with {done.returncode}: {done.stderr.strip()[-300:]}"}
    outcome: dict[str, Any] = json.loads(lines[-1])
    return outcome


def _disk_full(
    scenario: Scenario,
    engine: str,
    sandbox: Sandbox,
    result: DrillResult,
    before: int,
    after: int,
    value_size: int,
    seed: int,
    log: Log,
) -> None:
    volume_root = sandbox.root / "volume"
    quarantine_volume = sandbox.root / "quarantine-volume"  # the sandbox's real disk: "another volume"
    quarantine_volume.mkdir(parents=True)
    value_size = max(value_size, DISK_DRILL_VALUE_SIZE)
    data_bytes = (before + after) * (value_size + 64)
    megabytes = TMPFS_MEGABYTES + 3 * data_bytes // 2**20
    with contextlib.ExitStack() as stack:
        try:
            volume = stack.enter_context(sandbox_tmpfs(volume_root, megabytes))
        except MountRefused as exc:
            raise RuntimeError(
                f"disk-full needs a small real filesystem and mounting a tmpfs is not permitted "
                f"here ({exc}); the engines have no size quota to fall back on"
            ) from exc
        # the data dir in a folder of the small tmpfs (the foreign file goes next to it); the backups
        # and the ledger stay on the sandbox's real disk
        on_volume = dataclasses.replace(sandbox, data_dir=volume / "srv" / "data")
        data_dir = on_volume.data_dir
        data_dir.parent.mkdir()
        on_volume.load(engine, before=before, after=after, value_size=value_size, engine_options=DISK_DRILL_ENGINE)
        fault = on_volume.break_with(scenario.name, seed=seed)
        result.fault = fault.to_json()
        result.fault["method"] = f"tmpfs of {megabytes} MiB (a real ENOSPC), filled from outside the data dir"
        under = _write_under_fault(data_dir, on_volume.ledger_path, before + after)
        result.fault["under_fault"] = under
        free_before = disk_usage(data_dir).free
        if log:
            log(f"fault: {fault.summary}")
            log(f"writer on the full disk: {under.get('acked', 0)} acked, then {under.get('error')}")
        result.playbooks, result.triage = autopilot(
            data_dir, on_volume.repo, log=log, defaults={"quarantine_volume": str(quarantine_volume)}
        )
        ok, why = healthy(data_dir)
        result.rto_seconds = round(time.monotonic() - on_volume.fault_at, 3) if ok else None
        after_usage = disk_usage(data_dir)
        filler = Path(fault.extra["filler"])
        intact = filler.exists() and filler.stat().st_size == fault.extra["filled_bytes"]
        foreign, _mount, _seen = largest_foreign_files(data_dir)
        outcome = (
            "recovered"
            if after_usage.ratio <= DISK_THRESHOLD
            else "needs-operator"
            if after_usage.free >= DISK_FULL_FREE_BYTES
            else "full"
        )
        result.fault.update(
            {
                "freed_bytes": max(0, after_usage.free - free_before),
                "free_bytes_after_recovery": after_usage.free,
                "used_ratio_after_recovery": round(after_usage.ratio, 4),
                "outcome": outcome,
                "foreign_files": foreign,
                "foreign_fill_intact": intact,
            }
        )
        listed = ", ".join(f"{entry['path']} ({entry['bytes'] / 2**20:.1f} MiB)" for entry in foreign)
        if not intact:
            ok, why = False, f"the foreign file {filler} was changed or removed: recovery must never touch it"
        elif outcome == "full":
            ok, why = False, f"still full after recovery ({after_usage.free} bytes free); not ours: {listed}; {why}"
        elif ok and outcome == "needs-operator":
            why += (
                f"; needs an operator: disk {after_usage.ratio * 100:.1f} % used, the largest files not ours: {listed}"
            )
        if not ok:
            result.rto_seconds = None  # not recovered: no recovery time
        result.recovered, result.health = ok, why
        record_rpo(result, on_volume.ledger_path, data_dir, on_volume.fault_wall)
        result.passed = met_targets(scenario, ok, result.rto_seconds, result.rpo_seconds, result.lost_writes)
        if result.sandbox is not None:  # --keep: the tmpfs goes away with the drill, a copy of its data stays
            shutil.copytree(data_dir, sandbox.data_dir, symlinks=True)


def _memory_pressure(
    scenario: Scenario,
    engine: str,
    sandbox: Sandbox,
    result: DrillResult,
    before: int,
    after: int,
    value_size: int,
    seed: int,
    log: Log,
) -> None:
    with _one_memory_drill_per_host():
        _memory_pressure_alone(scenario, engine, sandbox, result, before, after, value_size, seed, log)


@contextlib.contextmanager
def _one_memory_drill_per_host() -> Iterator[None]:
    """Memory is the host's: a second drill's hog at the same time is a culprit this drill's threshold
    (taken before its own hog) does not account for, and either recovery may stop the other's. A lock
    file on this host lets one memory drill run at a time; a second waits its turn."""
    with open(Path(tempfile.gettempdir()) / "drconsole-memory-drill.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        yield


def _memory_pressure_alone(
    scenario: Scenario,
    engine: str,
    sandbox: Sandbox,
    result: DrillResult,
    before: int,
    after: int,
    value_size: int,
    seed: int,
    log: Log,
) -> None:
    data_dir = sandbox.data_dir
    sandbox.load(engine, before=before, after=after, value_size=value_size, archive_wal=False)
    total = psutil.virtual_memory().total
    # The sandbox's alert rule: what is used now plus half the hog. The probe reads real host memory.
    threshold = min(0.99, _used_ratio() + HOG_MEGABYTES * 2**20 / 2 / total)
    try:
        fault = sandbox.break_with(scenario.name, seed=seed, megabytes=HOG_MEGABYTES)
        result.fault = fault.to_json()
        result.fault["memory_threshold"] = round(threshold, 6)
        if log:
            log(
                f"fault: {fault.summary}; memory {_used_ratio() * 100:.1f} % used, the sandbox's alert at "
                f"{threshold * 100:.1f} %"
            )
        result.playbooks, result.triage = autopilot(data_dir, sandbox.repo, log=log, memory_threshold=threshold)
        result.fault["hog_stopped_by_recovery"] = _gone(int(fault.extra["pid"]))
        ok, why = healthy(data_dir)
        ratio = _used_ratio()
        if ok and ratio > threshold:
            ok, why = False, f"memory still {ratio * 100:.1f} % used; the alert is at {threshold * 100:.1f} %"
        result.rto_seconds = round(time.monotonic() - sandbox.fault_at, 3) if ok else None
        result.recovered, result.health = ok, why
        record_rpo(result, sandbox.ledger_path, data_dir, sandbox.fault_wall)
        result.passed = met_targets(scenario, ok, result.rto_seconds, result.rpo_seconds, result.lost_writes)
    finally:
        stop_memory_hogs(data_dir)  # a failed drill must not leave 1 GiB behind
