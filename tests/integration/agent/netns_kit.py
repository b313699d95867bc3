"""Two "hosts" joined by a real network: a pair of network namespaces and a veth cable between them.

Everything lives inside namespaces the test creates (their names and addresses are unique to
this process, and no address is added to the host's own namespace), and everything is removed
afterwards: deleting a namespace removes its end of the veth pair, and the other end with it.
Needs root and a kernel that lets it create namespaces; ``NetnsUnavailable`` says why not.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Hosts", "NetnsUnavailable", "two_hosts", "in_host"]

CLIENT_SCRIPT = Path(__file__).with_name("netns_client.py")


class NetnsUnavailable(Exception):
    pass


@dataclass(frozen=True)
class Hosts:
    console: str  # namespace names
    node: str
    console_ip: str
    node_ip: str

    def prefix(self, namespace: str) -> list[str]:
        return ["ip", "netns", "exec", namespace]


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if done.returncode != 0:
        raise NetnsUnavailable(f"`ip {' '.join(args)}` failed: {done.stderr.strip() or done.returncode}")


@contextmanager
def two_hosts() -> Iterator[Hosts]:
    if os.geteuid() != 0:
        raise NetnsUnavailable("network namespaces need root (ip netns add)")
    if shutil.which("ip") is None:
        raise NetnsUnavailable("iproute2's `ip` is not installed")
    tag = f"drc{secrets.token_hex(3)}"  # interface names are at most 15 characters
    console, node = f"{tag}-c", f"{tag}-n"
    subnet = f"10.{secrets.randbelow(200) + 20}.{secrets.randbelow(250)}"
    hosts = Hosts(console, node, f"{subnet}.1", f"{subnet}.2")
    created: list[str] = []
    try:
        for name in (console, node):
            _ip("netns", "add", name)
            created.append(name)
        _ip("link", "add", f"{tag}c", "netns", console, "type", "veth", "peer", "name", f"{tag}n", "netns", node)
        for name, device, address in ((console, f"{tag}c", hosts.console_ip), (node, f"{tag}n", hosts.node_ip)):
            _ip("-n", name, "addr", "add", f"{address}/30", "dev", device)
            _ip("-n", name, "link", "set", device, "up")
            _ip("-n", name, "link", "set", "lo", "up")
        yield hosts
    finally:
        for name in created:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)


def in_host(hosts: Hosts, namespace: str, command: str, *args: str, timeout: float = 120) -> Any:
    """Run ``netns_client.py COMMAND ARGS`` inside ``namespace``; its JSON answer."""
    done = subprocess.run([*hosts.prefix(namespace), sys.executable, str(CLIENT_SCRIPT), command, *args],
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"netns_client {command} failed in {namespace}: {done.stderr[-2000:]}")
    return json.loads(done.stdout)
