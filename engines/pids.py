"""Whether a process id names a running process: the one answer for every lock, marker and partial file.

A PID is alive when signal 0 reaches it, or when it exists but belongs to another user (EPERM: the
node may run as its own service user). This process's own PID is alive: a caller that treats its
own leftovers as stale (a restore clearing the partial dir an earlier attempt in this process left)
says so where it asks, since only it knows what the file means.
"""

from __future__ import annotations

import os

__all__ = ["process_alive"]


def process_alive(pid: int) -> bool:
    if pid <= 0:
        return False  # 0 and negatives name process groups for kill(), never one process
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
