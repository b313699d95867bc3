"""Who eats the memory: the process outside the node whose resident memory, alone, is the excess.

Found by probing, as a responder does with ``ps aux --sort=-%mem`` twice a moment apart: every
process's resident set (RSS) is sampled twice, ``sample_seconds`` apart, which gives its size and
its growth (a leak grows). The culprit is the largest process that is not ours to spare:

- not a holder of the data dir's lock (the node itself: memory-recovery flushes it instead),
- not another ``node serve`` (a service of the fleet), not pid 1, not this process nor its
  ancestors (the console, the runner, the drill that called it), not a kernel thread,
- one we may signal (same user, or we are root),

and only when its RSS alone is at least the excess over the alert rule: stopping a smaller one
would not bring memory back under it, and stopping it "to help" is not a recovery. Nothing here
reads a fault's record: a drill's hog is found the way any leaking process is.
Shared by the ``memory.exhausted`` probe (evidence) and the ``memory.stop_culprit`` action.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from playbooks.evidence import lock_holders

__all__ = ["Culprit", "MemoryView", "survey_memory", "stop_culprit"]


@dataclass(frozen=True)
class Culprit:
    pid: int
    name: str
    command: str
    rss_bytes: int
    growth_bytes: int  # RSS change over the sampling window (a leak grows)
    create_time: float

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class MemoryView:
    used_bytes: int
    total_bytes: int
    threshold: float
    excess_bytes: int  # used above the threshold (0: under it)
    culprit: Culprit | None
    largest: list[Culprit] = field(default_factory=list)  # the top processes, spared ones included
    spared: dict[int, str] = field(default_factory=dict)  # pid -> why it is not a candidate

    def sentence(self) -> str:
        if self.culprit is None:
            top = self.largest[0] if self.largest else None
            return (
                "no single process we may stop holds the excess of "
                + _mib(self.excess_bytes)
                + (
                    f" (largest: pid {top.pid} {top.name}, {_mib(top.rss_bytes)}"
                    + (f", spared: {self.spared[top.pid]}" if top.pid in self.spared else "")
                    + ")"
                    if top
                    else ""
                )
            )
        c = self.culprit
        return (
            f"culprit: pid {c.pid} {c.name} with {_mib(c.rss_bytes)} resident ({_growth(c.growth_bytes)}), "
            f"the excess over the rule is {_mib(self.excess_bytes)}"
        )


def _mib(value: int) -> str:
    return f"{value / 2**20:.0f} MiB"


def _growth(value: int) -> str:
    return f"grew {_mib(value)} while sampled" if value > 2**20 else "steady while sampled"


def _ancestors() -> set[int]:
    found = {os.getpid()}
    try:
        for parent in psutil.Process().parents():
            found.add(parent.pid)
    except psutil.Error:
        pass
    return found


def _rss_table() -> dict[int, tuple[int, float]]:
    table = {}
    for process in psutil.process_iter(["pid", "memory_info", "create_time"]):
        info = process.info
        if info.get("memory_info") is not None:
            table[info["pid"]] = (info["memory_info"].rss, info.get("create_time") or 0.0)
    return table


def survey_memory(data_dir: Path | None, *, threshold: float, sample_seconds: float = 0.3, top: int = 5) -> MemoryView:
    """Sample every process's RSS twice; the culprit, if one alone holds the excess over ``threshold``."""
    memory = psutil.virtual_memory()
    used = memory.total - memory.available
    excess = max(0, int(used - float(threshold) * memory.total))
    first = _rss_table()
    time.sleep(max(0.0, sample_seconds))
    second = _rss_table()
    node_pids = {pid for pid, _command in lock_holders(data_dir)} if data_dir is not None else set()
    ours = _ancestors()
    me = os.geteuid()
    ranked = sorted(second.items(), key=lambda item: item[1][0], reverse=True)
    largest: list[Culprit] = []
    spared: dict[int, str] = {}
    culprit: Culprit | None = None
    for pid, (rss, created) in ranked:
        if rss == 0:
            break  # kernel threads and the rest: nothing resident
        try:
            process = psutil.Process(pid)
            name, command, uid = process.name(), " ".join(process.cmdline())[:200], process.uids().real
        except psutil.Error:
            continue
        before = first.get(pid)
        growth = rss - before[0] if before is not None and before[1] == created else rss
        entry = Culprit(pid, name, command, rss, growth, created)
        why = _spared(pid, command, uid, me, node_pids, ours)
        in_top = len(largest) < top
        if in_top:
            largest.append(entry)
            if why:
                spared[pid] = why
        if not why and culprit is None and excess > 0 and rss >= excess:
            culprit = entry
        if not in_top and (culprit is not None or rss < excess):
            break  # ranked by RSS: nothing further down is in the top, or holds the excess
    return MemoryView(used, memory.total, float(threshold), excess, culprit, largest, spared)


def _spared(pid: int, command: str, uid: int, me: int, node_pids: set[int], ours: set[int]) -> str:
    if pid == 1:
        return "pid 1"
    if pid in node_pids:
        return "the node serving the data dir"
    if pid in ours:
        return "this process or one of its parents"
    if " node serve " in f" {command} ":
        return "a node of the fleet (a service)"
    if me != 0 and uid != me:
        return "another user's process"
    return ""


def stop_culprit(culprit: Culprit, *, timeout: float = 5.0) -> int:
    """SIGTERM, then SIGKILL after ``timeout``, to the culprit if it is still the same process; RSS freed."""
    try:
        process = psutil.Process(culprit.pid)
        if abs(process.create_time() - culprit.create_time) > 0.5:
            return 0  # the pid was reused: not the process that was measured
        rss = process.memory_info().rss
        process.terminate()
        try:
            process.wait(timeout)
        except psutil.TimeoutExpired:
            process.kill()
            process.wait(timeout)
        return int(rss)
    except psutil.NoSuchProcess:
        return 0
