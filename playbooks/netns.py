"""Which network a process lives in: its network namespace (by name when ``ip netns`` named it),
and an HTTP GET made from inside that namespace.

A node in another network namespace (a container, a drill's partition lab) is on another network:
from here it may not answer while it serves its own side perfectly well. That is a partition, not a
hang, and the difference matters: a hung primary is shot (STONITH) before a standby is promoted; a
cut-off one keeps running, and what it takes meanwhile is reconciled when the network heals.
``ask_inside`` asks the process's ``/health`` from inside its namespace, which tells the two
apart. A supervisor's restart runs the new process in the same named namespace (``ip netns exec``).

Entering a namespace needs CAP_SYS_ADMIN; without it ``ask_inside`` says it cannot tell (None).
``cables``/``set_cables``: the namespace's network interfaces other than loopback, set down or up:
a cable pulled on the node's side. Its own address stays local to it (the kernel keeps the local
route of a down interface), so a client inside the namespace still reaches it: the cut-off side
of a partition keeps working.
Nothing here imports the rest of playbooks.
"""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import subprocess
import threading
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "netns_inode",
    "same_netns",
    "netns_name",
    "ask_inside",
    "netns_prefix",
    "NETNS_DIR",
    "cables",
    "set_cables",
    "NetnsCommandError",
]

NETNS_DIR = Path("/run/netns")  # where `ip netns add NAME` binds the namespaces it names
_CLONE_NEWNET = 0x40000000


def netns_inode(pid: int) -> int | None:
    """The inode of ``pid``'s network namespace (None: gone, or not ours to look at)."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def same_netns(pid: int) -> bool:
    """Whether ``pid`` shares this process's network (True when it cannot be told)."""
    theirs, ours = netns_inode(pid), netns_inode(os.getpid())
    return theirs is None or ours is None or theirs == ours


def netns_name(pid: int) -> str | None:
    """The ``ip netns`` name of ``pid``'s network namespace, when it has one and it is not ours."""
    if same_netns(pid):
        return None
    inode = netns_inode(pid)
    try:
        entries = sorted(NETNS_DIR.iterdir())
    except OSError:
        return None
    for entry in entries:
        try:
            if entry.stat().st_ino == inode:
                return entry.name
        except OSError:
            continue
    return None


def netns_prefix(name: str | None) -> list[str]:
    """The command prefix that runs a program in namespace ``name`` (nothing for ours)."""
    return ["ip", "netns", "exec", name] if name else []


def ask_inside(pid: int, url: str, *, timeout: float = 1.0) -> str | None:
    """GET ``url``/health from inside ``pid``'s network namespace: ``"answered"`` (any HTTP status),
    ``"timeout"`` (connected or not, nothing within ``timeout``: silent) or ``"refused"``.

    None: its namespace could not be entered (no privilege, the process is gone): it cannot be told.
    """
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    outcome: list[str | None] = [None]

    def ask() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            # setns changes the namespace of this thread only; the thread ends right after.
            if libc.setns(fd, _CLONE_NEWNET) != 0:
                return
        finally:
            os.close(fd)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout)
        try:
            connection.request("GET", "/health")
            connection.getresponse().read()
            outcome[0] = "answered"
        except TimeoutError:
            outcome[0] = "timeout"
        except (OSError, http.client.HTTPException):
            outcome[0] = "refused"
        finally:
            connection.close()

    worker = threading.Thread(target=ask, name=f"netns-{pid}", daemon=True)
    worker.start()
    worker.join(timeout + 2.0)
    return outcome[0]


class NetnsCommandError(Exception):
    """``ip`` refused (not root, no such namespace)."""


def _ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=False)
    if done.returncode != 0:
        raise NetnsCommandError(f"`ip {' '.join(args)}` failed: {done.stderr.strip() or done.returncode}")
    return done.stdout


def cables(name: str) -> list[dict[str, object]]:
    """The interfaces of namespace ``name`` other than loopback: [{"name", "up"}]."""
    links = json.loads(_ip("-j", "-n", name, "link", "show") or "[]")
    return [
        {"name": link["ifname"], "up": "UP" in link.get("flags", [])}
        for link in links
        if link.get("link_type") != "loopback"
    ]


def set_cables(name: str, up: bool) -> list[str]:
    """Set every non-loopback interface of namespace ``name`` up or down; the interfaces changed."""
    changed = []
    for cable in cables(name):
        if bool(cable["up"]) != up:
            _ip("-n", name, "link", "set", str(cable["name"]), "up" if up else "down")
            changed.append(str(cable["name"]))
    return changed
