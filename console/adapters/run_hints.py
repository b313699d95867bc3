"""The next thing a responder can do after a run stops: keys of the Run screen and shell commands.

A held data dir is the common case on a host where a node serves it: the playbooks' runner cannot
take its safety copy, and the way on is to stop that process, then resume. ``lock_holder`` names
the process from ``/proc/locks`` (Linux) so the hint is a command, not a riddle: ``systemctl stop``
for a systemd unit, ``kill PID`` otherwise. A node with a url is drained by its own agent, so this
hint is for data dirs the console acts on directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from console.adapters.run_state import RunState

__all__ = ["LockHolder", "lock_holder", "next_actions"]

LOCK_NAME = "drconsole.lock"  # engines.locking.LOCK_NAME: the one flock every engine takes
HELD = ("in use by another process", "LockedError")


@dataclass(frozen=True)
class LockHolder:
    pid: int
    command: str
    unit: str | None  # the systemd service that runs it, if any

    def stop_command(self) -> str:
        return f"systemctl stop {self.unit}" if self.unit else f"kill {self.pid}"


def _read(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def lock_holder(data_dir: Path, proc: Path = Path("/proc")) -> LockHolder | None:
    """The process that holds ``data_dir``'s lock, from the kernel's lock table; None if unknown."""
    try:
        info = (Path(data_dir) / LOCK_NAME).stat()
    except OSError:
        return None
    wanted = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    for row in _read(str(proc / "locks")).splitlines():
        fields = row.split()
        if "->" in fields:  # a waiter, not the holder
            continue
        try:
            pid, device = int(fields[4]), fields[5]
        except (IndexError, ValueError):
            continue
        if device != wanted or pid == os.getpid():
            continue
        command = _read(str(proc / str(pid) / "cmdline")).replace("\0", " ").strip() or f"pid {pid}"
        unit = None
        for line in _read(str(proc / str(pid) / "cgroup")).splitlines():
            name = line.rsplit("/", 1)[-1]
            if name.endswith(".service") and not name.startswith(("user@", "session-")):
                unit = name
        return LockHolder(pid, command, unit)
    return None


def next_actions(state: RunState, data_dir: Path | None) -> list[str]:
    """What the responder can do now that the run stopped without success (markup-free lines)."""
    step = state.failed_step()
    reason = state.reasons.get(step.id, "") if step is not None else state.error
    if state.result is not None and state.result.message and not reason:
        reason = state.result.message
    lines: list[str] = []
    if any(mark in reason for mark in HELD) and data_dir is not None:
        holder = lock_holder(data_dir)
        if holder is not None:
            lines.append(f"stop the node that holds {data_dir}: {holder.stop_command()}   ({holder.command})")
        else:
            lines.append(f"stop the process that holds {data_dir} (see: fuser -v {data_dir / LOCK_NAME})")
        lines.append("then press r to resume: the run goes on from the step that failed")
    elif state.cancelled:
        lines.append("press r to resume the run from where it stopped, or s to start it anew")
    elif state.status == "refused" and step is not None and "not confirmed" in reason:
        lines.append(f"press r to resume: {step.id} asks again for the node name")
    elif state.error and not state.run_id:
        lines.append("fix the cause above, then press s to start (p shows the plan)")
    else:
        where = f" from {step.id} (it runs again)" if step is not None else ""
        lines.append(f"press r to resume{where} once the cause is fixed, s to start anew, p for the plan")
    if state.result is not None and state.result.escalation:
        lines.append("escalate: " + " -> ".join(state.result.escalation))
    return lines
