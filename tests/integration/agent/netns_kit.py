"""Two "hosts" joined by a real network: a pair of network namespaces and a veth cable between them.

Everything lives inside namespaces the test creates (their names and addresses are unique to
this process, and no address is added to the host's own namespace), and everything is removed
afterwards: deleting a namespace removes its end of the veth pair, and the other end with it.
Needs root and a kernel that lets it create namespaces; ``NetnsUnavailable`` says why not (the ``ip``
helper and that check are the drills' partition lab's, ``drills.netlab``).
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drills.netlab import NetnsUnavailable, check_netns, ip

__all__ = ["Hosts", "NetnsUnavailable", "two_hosts", "in_host"]

CLIENT_SCRIPT = Path(__file__).with_name("netns_client.py")


@dataclass(frozen=True)
class Hosts:
    console: str  # namespace names
    node: str
    console_ip: str
    node_ip: str

    def prefix(self, namespace: str) -> list[str]:
        return ["ip", "netns", "exec", namespace]


@contextmanager
def two_hosts() -> Iterator[Hosts]:
    check_netns()
    tag = f"drc{secrets.token_hex(3)}"  # interface names are at most 15 characters
    console, node = f"{tag}-c", f"{tag}-n"
    subnet = f"10.{secrets.randbelow(200) + 20}.{secrets.randbelow(250)}"
    hosts = Hosts(console, node, f"{subnet}.1", f"{subnet}.2")
    created: list[str] = []
    try:
        for name in (console, node):
            ip("netns", "add", name)
            created.append(name)
        ip("link", "add", f"{tag}c", "netns", console, "type", "veth", "peer", "name", f"{tag}n", "netns", node)
        for name, device, address in ((console, f"{tag}c", hosts.console_ip), (node, f"{tag}n", hosts.node_ip)):
            ip("-n", name, "addr", "add", f"{address}/30", "dev", device)
            ip("-n", name, "link", "set", device, "up")
            ip("-n", name, "link", "set", "lo", "up")
        yield hosts
    finally:
        for name in created:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)


def in_host(hosts: Hosts, namespace: str, command: str, *args: str, timeout: float = 120) -> Any:
    """Run ``netns_client.py COMMAND ARGS`` inside ``namespace``; its JSON answer."""
    done = subprocess.run(
        [*hosts.prefix(namespace), sys.executable, str(CLIENT_SCRIPT), command, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise AssertionError(f"netns_client {command} failed in {namespace}: {done.stderr[-2000:]}")
    return json.loads(done.stdout)
