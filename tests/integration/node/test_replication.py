"""Standbys, the WAL archive, promotion, fencing, rejoin and split brain, on real loopback ports."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import httpx
import pytest
from integration.node.node_support import free_port, wait_until

from engines.node.client import NodeClient
from engines.node.errors import NodeRefusedError


def _caught_up(url: str, lsn: int) -> bool:
    report = httpx.get(f"{url}/replication").json()
    return bool(report["applied_lsn"] >= lsn and report["lag_records"] == 0 and report["lag_seconds"] == 0.0)


def test_standby_catches_up_and_reports_zero_lag(node_thread) -> None:
    primary = node_thread("primary")
    standby = node_thread("standby", follow=primary.url)
    with NodeClient(primary.url) as client:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            lsns = list(pool.map(lambda i: client.put(f"key-{i:05d}".encode(), f"value-{i}".encode()), range(2000)))
        client.delete(b"key-00000")
    last = max(lsns) + 1
    wait_until(lambda: _caught_up(standby.url, last), timeout=20)
    report = httpx.get(f"{standby.url}/replication").json()
    assert report["role"] == "standby" and report["upstream"] == primary.url
    assert report["lag_records"] == 0 and report["lag_bytes"] == 0 and report["lag_seconds"] == 0.0
    assert report["primary_lsn"] == last and report["split_brain"] is False
    with NodeClient(standby.url) as reader:
        assert reader.get(b"key-01999") == b"value-1999"
        assert reader.get(b"key-00000") is None
        with pytest.raises(NodeRefusedError, match=primary.url):
            reader.put(b"x", b"y")  # a standby names the primary
    primary_view = httpx.get(f"{primary.url}/replication").json()
    assert primary_view["standbys"][0]["name"] == "standby"


def test_standby_behind_the_primary_wal_catches_up_from_the_archive(node_thread, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    primary = node_thread("primary", archive=repo, wal_segment_bytes=64 * 1024)
    with NodeClient(primary.url) as client:
        for batch in range(6):
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda i, batch=batch: client.put(f"k{batch}-{i:04d}".encode(), b"v" * 200), range(300)))
        client.admin("flush")  # the store covers the WAL: sealed segments are archived, then recycled
        last = client.health()["last_lsn"]
    assert httpx.get(f"{primary.url}/wal", params={"from_lsn": 1}).status_code == 410
    standby = node_thread("standby", follow=primary.url, archive=repo)
    wait_until(lambda: _caught_up(standby.url, last), timeout=30)
    report = httpx.get(f"{standby.url}/replication").json()
    assert report["applied_from_archive"] > 0
    with NodeClient(standby.url) as reader:
        assert reader.get(b"k0-0000") == b"v" * 200
        assert reader.get(b"k5-0299") == b"v" * 200


def test_without_an_archive_a_standby_behind_says_it_needs_a_reseed(node_thread) -> None:
    primary = node_thread("primary", wal_segment_bytes=64 * 1024)
    with NodeClient(primary.url) as client:
        for i in range(1500):
            client.put(f"k{i}".encode(), b"v" * 200) if i % 100 else client.admin("flush")
        client.admin("flush")
    standby = node_thread("standby", follow=primary.url)
    report = wait_until(
        lambda: (r := httpx.get(f"{standby.url}/replication").json())["follower_state"] == "needs-reseed" and r
    )
    assert "reseed" in report["last_error"]


def test_promotion_fences_the_old_primary_which_rejoins_as_standby(node_thread, tmp_path: Path) -> None:
    port_a = free_port()
    a = node_thread("a", port=port_a)
    b = node_thread("b", follow=a.url, peers=[a.url])
    with NodeClient(a.url) as client:
        for i in range(100):
            client.put(f"before-{i}".encode(), b"1")
        last = client.health()["last_lsn"]
    wait_until(lambda: _caught_up(b.url, last))
    a.stop()  # the primary goes away
    with NodeClient(b.url) as client:
        promoted = client.promote()
        assert promoted["role"] == "primary" and promoted["epoch"] == 1 and promoted["changed"] is True
        client.put(b"after", b"2")
    # The old primary comes back as it was, knowing only its peer: it learns of epoch 1 and fences.
    a2 = node_thread("a", port=port_a, peers=[b.url])
    wait_until(lambda: httpx.get(f"{a2.url}/health").json()["role"] == "fenced")
    refused = httpx.put(f"{a2.url}/kv/x", content=b"y")
    assert refused.status_code == 409 and "fenced" in refused.json()["error"]
    assert httpx.get(f"{a2.url}/health").status_code == 503
    # Rejoin it as a standby of the new primary: it catches up with what b took since.
    with NodeClient(a2.url) as client:
        client.demote(b.url)
    new_last = httpx.get(f"{b.url}/health").json()["last_lsn"]
    wait_until(lambda: _caught_up(a2.url, new_last))
    assert NodeClient(a2.url).get(b"after") == b"2"
    assert httpx.get(f"{a2.url}/health").json()["epoch"] == 1
    marker = (tmp_path / "b" / "drconsole.json").read_text()
    assert '"epoch": 1' in marker


def test_a_diverged_old_primary_is_refused_as_standby(node_thread) -> None:
    a = node_thread("a")
    b = node_thread("b", follow=a.url)
    with NodeClient(a.url) as client:
        client.put(b"shared", b"1")
    wait_until(lambda: _caught_up(b.url, 1))
    b_client = NodeClient(b.url)
    b_client.promote()
    with NodeClient(a.url) as client:
        client.put(b"only-on-a", b"lost")  # a has not learnt of epoch 1: an unreplicated write
        client.fence("operator", epoch=1)
        client.demote(b.url)
    report = wait_until(lambda: (r := httpx.get(f"{a.url}/replication").json())["follower_state"] == "refused" and r)
    assert "diverged" in report["last_error"] or "timelines split" in report["last_error"]


def test_split_brain_is_reported_by_both_primaries(node_thread) -> None:
    port_a, port_b = free_port(), free_port()
    a = node_thread("a", port=port_a, peers=[f"http://127.0.0.1:{port_b}"])
    b = node_thread("b", port=port_b, peers=[a.url])
    for server in (a, b):
        wait_until(lambda server=server: httpx.get(f"{server.url}/health").json()["split_brain"])
        assert httpx.get(f"{server.url}/replication").json()["split_brain"] is True
        peers = httpx.get(f"{server.url}/peers").json()
        assert peers["split_brain"] is True and peers["partition"] is True and peers["isolated"] is False
        assert "drconsole_split_brain 1.0" in httpx.get(f"{server.url}/metrics").text


def test_an_isolated_node_is_reported(node_thread) -> None:
    lonely = node_thread("lonely", peers=[f"http://127.0.0.1:{free_port()}"])
    report = wait_until(lambda: (r := httpx.get(f"{lonely.url}/peers").json())["isolated"] and r)
    assert report["peers"][0]["reachable"] is False and report["peers"][0]["last_error"]
