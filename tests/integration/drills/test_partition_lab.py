"""The partition lab and the network faults on real namespaces: a cut node keeps serving its own side,
nothing outside reaches it, the heal brings it back; a node on the host's own network is refused."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from integration.served_node import ServedNode, free_port

from drills.netlab import NetnsUnavailable, PartitionLab
from faults import FaultError, inject
from playbooks.netns import ask_inside, cables, netns_name, same_netns


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=0.5)
        return True
    except httpx.HTTPError:
        return False


def test_a_cut_cable_leaves_the_node_serving_its_own_side_only() -> None:
    try:
        lab_context = PartitionLab.create(["a", "b"])
        lab = lab_context.__enter__()
    except NetnsUnavailable as exc:
        pytest.skip(f"network namespaces are refused here: {exc}")
    server = None
    try:
        port = free_port()
        url = f"http://{lab.address('a')}:{port}"
        server = subprocess.Popen(
            [*lab.prefix("a"), sys.executable, "-m", "http.server", str(port), "--bind", lab.address("a")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _answers(url) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _answers(url), "the server in the lab never answered from here"
        assert netns_name(server.pid) == lab.netns("a") and not same_netns(server.pid)
        lab.cut("a")
        assert all(not cable["up"] for cable in cables(lab.netns("a")))
        assert not _answers(url)  # nothing outside its namespace reaches it
        assert ask_inside(server.pid, url, timeout=2.0) == "answered"  # its own side still does
        assert server.poll() is None
        assert lab.heal("a")
        deadline = time.monotonic() + 10
        while not _answers(url) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _answers(url)
    finally:
        if server is not None:
            server.kill()
            server.wait(10)
        lab_context.__exit__(None, None, None)
    assert subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.count(lab.tag) == 0


def test_a_node_on_the_hosts_own_network_is_not_cut(tmp_path: Path) -> None:
    node = ServedNode(tmp_path / "a")
    node.start()
    try:
        with pytest.raises(FaultError, match="this host's own network"):
            inject("network-partition", node.data_dir)
        assert _answers(f"{node.url}/health")
    finally:
        node.kill()


def test_host_loss_is_refused_for_a_node_on_the_hosts_own_network(tmp_path: Path) -> None:
    node = ServedNode(tmp_path / "a")
    node.start()
    try:
        with pytest.raises(FaultError, match="this host's own network"):
            inject("host-loss", node.data_dir, repo=tmp_path / "repo")
        assert _answers(f"{node.url}/health") and (node.data_dir / "drconsole.json").exists()
        assert not list(tmp_path.glob("a/.lost-host-*")) and not list(tmp_path.glob(".lost-host-*"))
    finally:
        node.kill()
