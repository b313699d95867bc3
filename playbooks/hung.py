"""Processes that hold a data dir's lock but serve nothing: stopped (SIGSTOP, a debugger) or silent on /health.

A process in another network namespace is asked from inside it (``playbooks.netns``): silence
across a cut network is a partition, not a hang.

Shared by the ``process.hung`` probe and the ``process-hang`` actions; it imports neither, so
probes, actions and faults can all use it without importing each other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from playbooks.evidence import lock_holders
from playbooks.netns import ask_inside, same_netns

__all__ = ["HEALTH_TIMEOUT", "HungProcess", "hung_holders", "listening_urls"]

HEALTH_TIMEOUT = 1.0  # a node that does not answer /health within this is not serving
_STOPPED = (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)


@dataclass(frozen=True)
class HungProcess:
    """A process holding the data dir's lock that serves nothing: stopped, or silent on /health."""

    pid: int
    command: str
    state: str
    reason: str
    seen_at: float
    url: str | None = None

    def sentence(self, data_dir: Path) -> str:
        seen = time.strftime("%H:%M:%S", time.localtime(self.seen_at))
        return f"pid {self.pid} holds the lock of {data_dir}, {self.reason} (seen at {seen})"

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def listening_urls(process: psutil.Process) -> list[str]:
    """http://host:port of the TCP sockets ``process`` listens on (a node's API), loopback first."""
    urls = []
    for connection in process.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr:
            host = connection.laddr.ip
            host = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
            urls.append(f"http://{host}:{connection.laddr.port}")
    return sorted(urls, key=lambda url: "127.0.0.1" not in url)


def _silent(url: str, timeout: float) -> bool:
    """True when ``url``/health accepts the connection but answers nothing within ``timeout``."""
    try:
        httpx.get(f"{url}/health", timeout=timeout)
    except httpx.TimeoutException:
        return True
    except httpx.HTTPError:
        return False  # refused or reset: not a hang (a crash is another question)
    return False


def hung_holders(data_dir: Path, *, health_timeout: float = HEALTH_TIMEOUT) -> list[HungProcess]:
    """The lock holders of ``data_dir`` that are stopped (SIGSTOP, a debugger) or do not answer /health.

    A stopped process keeps its lock, so "is it running?" answers yes while it serves nothing.
    """
    found = []
    for pid, command in lock_holders(data_dir):
        try:
            process = psutil.Process(pid)
            state = process.status()
            seen = time.time()
            if state in _STOPPED:
                found.append(
                    HungProcess(pid, command, state, f"state {state}: it runs no code and serves nothing", seen)
                )
                continue
            inside = not same_netns(pid)  # another network: ask from inside it, or a cut is taken for a hang
            for url in listening_urls(process):
                if inside:
                    if ask_inside(pid, url, timeout=health_timeout) == "timeout":
                        found.append(
                            HungProcess(
                                pid,
                                command,
                                state,
                                f"state {state}, but {url}/health did not "
                                f"answer within {health_timeout:g} s even from "
                                "inside its network namespace",
                                seen,
                                url,
                            )
                        )
                        break
                    continue
                if _silent(url, health_timeout):
                    found.append(
                        HungProcess(
                            pid,
                            command,
                            state,
                            f"state {state}, but {url}/health did not answer within {health_timeout:g} s",
                            seen,
                            url,
                        )
                    )
                    break
        except psutil.Error:
            continue  # gone while we looked: not hung
    return found
