"""A partition lab: each drill node on its own network namespace, all on one bridge, cut for real.

    with PartitionLab.create(["node-a", "node-b", "node-c"]) as lab:
        lab.address("node-a")        # 10.X.Y.1: the node listens there, inside namespace lab.netns("node-a")
        lab.cut("node-a")            # its cable to the switch goes down: no peer and no client reaches it
        lab.heal("node-a")

The switch is a namespace of its own with a Linux bridge; each node namespace has a veth cable to
it, and one more cable joins this (the drill's) namespace, so the load and the autopilot reach
every node as a client on the network does. ``cut`` sets the node's cable down (the
``network-partition`` and ``isolated-node`` faults do the same to any node in a named namespace):
the node keeps running, and a client inside its namespace (``lab.prefix``) still reaches it and
gets its writes acknowledged, as a client on the cut-off side of a real partition does. Only
the cable on this side of the switch gets an address here, on a subnet picked at random in
10.0.0.0/8; deleting the switch namespace removes it with everything else.

Needs root and a kernel that allows network namespaces: ``NetnsUnavailable`` says why not. The
``ip`` helper is shared with the tests' two-host kit (tests/integration/agent/netns_kit.py).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from playbooks.netns import netns_prefix, set_cables

__all__ = ["NetnsUnavailable", "PartitionLab", "ip", "check_netns"]


class NetnsUnavailable(Exception):
    """Network namespaces cannot be made here (not root, no iproute2, or the kernel refuses)."""


def ip(*args: str) -> None:
    """Run ``ip ARGS``; NetnsUnavailable with what it said when it fails."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=False)
    if done.returncode != 0:
        raise NetnsUnavailable(f"`ip {' '.join(args)}` failed: {done.stderr.strip() or done.returncode}")


def check_netns() -> None:
    """NetnsUnavailable unless this process may make network namespaces (root and iproute2)."""
    if os.geteuid() != 0:
        raise NetnsUnavailable("network namespaces need root (ip netns add)")
    if shutil.which("ip") is None:
        raise NetnsUnavailable("iproute2's `ip` is not installed")


@dataclass
class PartitionLab:
    tag: str
    subnet: str  # the first three octets
    nodes: dict[str, int] = field(default_factory=dict)  # name -> index (address .index, interface suffix)

    @classmethod
    @contextmanager
    def create(cls, names: list[str]) -> Iterator[PartitionLab]:
        check_netns()
        if len(names) > 200:
            raise ValueError("a lab holds at most 200 nodes")
        lab = cls(f"drp{secrets.token_hex(3)}", f"10.{secrets.randbelow(200) + 20}.{secrets.randbelow(250)}")
        made: list[str] = []
        try:
            ip("netns", "add", lab.switch)
            made.append(lab.switch)
            ip("-n", lab.switch, "link", "add", "br0", "type", "bridge")
            ip("-n", lab.switch, "link", "set", "br0", "up")
            # this namespace's cable (the console's side of the network): the only address added here
            ip("link", "add", f"{lab.tag}h", "type", "veth", "peer", "name", f"{lab.tag}hs", "netns", lab.switch)
            ip("-n", lab.switch, "link", "set", f"{lab.tag}hs", "master", "br0", "up")
            ip("addr", "add", f"{lab.subnet}.254/24", "dev", f"{lab.tag}h")
            ip("link", "set", f"{lab.tag}h", "up")
            for index, name in enumerate(names, start=1):
                namespace = lab.netns_of(index)
                ip("netns", "add", namespace)
                made.append(namespace)
                ip(
                    "link",
                    "add",
                    f"{lab.tag}{index}n",
                    "netns",
                    namespace,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    f"{lab.tag}{index}s",
                    "netns",
                    lab.switch,
                )
                ip("-n", lab.switch, "link", "set", f"{lab.tag}{index}s", "master", "br0", "up")
                ip("-n", namespace, "addr", "add", f"{lab.subnet}.{index}/24", "dev", f"{lab.tag}{index}n")
                ip("-n", namespace, "link", "set", f"{lab.tag}{index}n", "up")
                ip("-n", namespace, "link", "set", "lo", "up")
                lab.nodes[name] = index
            yield lab
        finally:
            for namespace in reversed(made):  # a namespace's veth ends go with it, and their peers too
                subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=20, check=False)

    @property
    def switch(self) -> str:
        return f"{self.tag}-sw"

    def netns_of(self, index: int) -> str:
        return f"{self.tag}-{index}"

    def netns(self, name: str) -> str:
        return self.netns_of(self.nodes[name])

    def address(self, name: str) -> str:
        return f"{self.subnet}.{self.nodes[name]}"

    def prefix(self, name: str) -> list[str]:
        """The command prefix that runs a program on ``name``'s side of the network."""
        return netns_prefix(self.netns(name))

    def cut(self, name: str) -> None:
        """Pull ``name``'s cable (``playbooks.netns.set_cables``): it runs on, reachable only from its side."""
        set_cables(self.netns(name), up=False)

    def heal(self, name: str) -> list[str]:
        """Plug ``name``'s cable back (what the network team's fix is to the drill); the interfaces set up."""
        return set_cables(self.netns(name), up=True)

    def heal_all(self) -> None:
        for name in self.nodes:
            self.heal(name)
