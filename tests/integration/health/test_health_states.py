"""The states the recovery agent and replication drive: recovering, /primary and /replica, degraded, compaction."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from integration.health.health_support import flip_lsm_block, wait_until
from integration.health.test_node_health import metric

from engines import open_engine
from engines.errors import CorruptionError


def test_recovering_answers_503_recovering_to_clients_and_monitoring(threaded: Callable[..., Any]) -> None:
    server = threaded("orders")
    url, node = server.url, server.node
    httpx.put(f"{url}/kv/a", content=b"1").raise_for_status()
    errors_before = metric(url, "drconsole_operation_errors_total")

    node.set_recovering("data-recovery run 42 holds the data dir")
    for method, path in (("GET", "/kv/a"), ("PUT", "/kv/b"), ("DELETE", "/kv/a")):
        answer = httpx.request(method, f"{url}{path}", content=b"2" if method == "PUT" else None)
        assert answer.status_code == 503, (method, answer.text)
        assert answer.json()["kind"] == "NodeRecoveringError" and "recovering" in answer.json()["error"]
    # The agent drains and closes the engine: the health routes still answer, without touching it.
    node.engine.close()
    health = httpx.get(f"{url}/health")
    assert health.status_code == 503 and health.json()["status"] == "recovering"
    assert health.json()["recovering"]["reason"] == "data-recovery run 42 holds the data dir"
    assert httpx.get(f"{url}/ready").status_code == 503
    assert httpx.get(f"{url}/primary").status_code == 503
    assert metric(url, "drconsole_recovering") == 1
    assert metric(url, "drconsole_operation_errors_total") == errors_before  # refusals are not errors

    # ... reopens it, replays the WAL, and leaves the state: the node serves again.
    node.engine = open_engine(node.config.data_dir, "rw")
    node.clear_recovering()
    assert httpx.get(f"{url}/kv/a").content == b"1"
    assert httpx.get(f"{url}/health").json()["status"] == "healthy"
    assert httpx.get(f"{url}/ready").status_code == 200
    assert metric(url, "drconsole_recovering") == 0


def test_clear_corruption_is_the_agents_handle(threaded: Callable[..., Any]) -> None:
    server = threaded("ledger")
    node = server.node
    node.note_corruption(
        CorruptionError("block checksum mismatch", file=str(node.config.data_dir / "x.sst"), offset=4096)
    )
    body = httpx.get(f"{server.url}/health").json()
    assert body["status"] == "corrupt" and body["corruption"]["file"] == "x.sst"  # relative to the data dir
    cleared = node.clear_corruption("data-recovery run 42: verify clean after reopen")
    assert cleared is not None and cleared["offset"] == 4096
    body = httpx.get(f"{server.url}/health").json()
    assert body["status"] == "healthy"
    assert body["corruption_cleared"]["reason"] == "data-recovery run 42: verify clean after reopen"
    assert node.clear_corruption("again") is None


def test_primary_and_replica_follow_the_roles_through_a_promotion(threaded: Callable[..., Any]) -> None:
    primary = threaded("a", peer_interval=0.2)
    standby = threaded("b", follow=primary.url, peer_interval=0.2, peers=[primary.url])
    primary.node.config.peers.append(standby.url)
    httpx.put(f"{primary.url}/kv/k", content=b"v").raise_for_status()
    assert httpx.get(f"{primary.url}/primary").status_code == 200
    assert httpx.get(f"{primary.url}/replica").status_code == 503
    for method in ("HEAD", "OPTIONS"):  # HAProxy's httpchk sends OPTIONS unless told otherwise
        assert httpx.request(method, f"{primary.url}/primary").status_code == 200
    wait_until(lambda: httpx.get(f"{standby.url}/replica").status_code == 200, 10, "the standby streaming")
    assert httpx.get(f"{standby.url}/primary").json()["reason"] == "role standby"
    assert httpx.get(f"{standby.url}/replica", params={"lag": "16MB"}).status_code == 200
    assert httpx.get(f"{standby.url}/replica", params={"lag": "lots"}).status_code == 400

    httpx.post(f"{standby.url}/admin/promote").raise_for_status()
    assert httpx.get(f"{standby.url}/primary").status_code == 200
    assert httpx.get(f"{standby.url}/replica").status_code == 503
    # The old primary learns of epoch 2 through the standby it polls, fences itself, and leaves /primary.
    primary.node.learn_epoch(standby.node.epoch, "test")
    answer = httpx.get(f"{primary.url}/primary")
    assert answer.status_code == 503 and answer.json()["role"] == "fenced"
    health = httpx.get(f"{primary.url}/health")
    assert health.status_code == 503 and health.json()["status"] == "fenced"


def test_a_background_compaction_that_meets_damage_makes_the_node_corrupt(
    threaded: Callable[..., Any], tmp_path: Path
) -> None:
    # Small memtables and L0 -> L1 at two tables: the second flush starts a compaction of both.
    server = threaded("events", engine="lsm")
    url = server.url
    with httpx.Client(base_url=url) as client:
        for index in range(300):
            client.put(f"/kv/a{index:05d}", content=b"x" * 200).raise_for_status()
        client.post("/admin/flush").raise_for_status()
    flipped = flip_lsm_block(server.node.config.data_dir)
    answer = httpx.post(f"{url}/admin/compact")
    assert answer.status_code == 500 and "checksum" in answer.json()["error"]
    body = httpx.get(f"{url}/health").json()
    assert body["status"] == "corrupt" and body["corruption"]["found_by"] == "compaction"
    assert body["corruption"]["file"] == flipped.file


def test_the_background_compactor_reports_through_the_engine_hook(tmp_path: Path) -> None:
    from integration.health.health_support import flip_byte

    from engines import create_engine
    from engines.lsm.sstable_reader import open_table

    met: list[tuple[CorruptionError, str]] = []
    engine = create_engine(
        tmp_path / "d", backend="lsm", backend_options={"memtable_bytes": 64 * 1024, "l0_trigger": 2}
    )
    try:
        engine.corruption_hook = lambda error, found_by: met.append((error, found_by))
        for index in range(250):
            engine.put(f"a{index:05d}".encode(), b"x" * 200)
        engine.flush()
        engine.wait_for_background()  # type: ignore[attr-defined]  # the first tables compacted into L1
        table = sorted((tmp_path / "d" / "sstables").glob("*.sst"))[-1]
        reader = open_table(tmp_path / "d", int(table.stem))
        offset = reader.offsets[1] + 10
        reader.close()
        flip_byte(table, offset)
        for index in range(250):  # more tables: L0 reaches its trigger, the compactor runs
            engine.put(f"a{index:05d}".encode(), b"y" * 200)
        engine.flush()
        deadline = time.monotonic() + 10
        while not met and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        try:
            engine.close()
        except CorruptionError:
            pass
    assert met and met[0][1] == "compaction" and met[0][0].file == f"sstables/{table.name}"


def test_the_scrub_goes_on_after_the_agent_releases_and_reopens_the_data_dir(threaded: Callable[..., Any]) -> None:
    server = threaded("orders", scrub_interval=0.5, scrub_rate=0)
    url, node = server.url, server.node
    with httpx.Client(base_url=url) as client:
        for index in range(500):
            client.put(f"/kv/k{index:06d}", content=b"x" * 100).raise_for_status()
        client.post("/admin/flush").raise_for_status()
    wait_until(lambda: node.vitals.scrubber.passes >= 1, 10, "a first pass")
    node.release_data_dir("data-recovery step 3 holds the data dir")
    assert httpx.get(f"{url}/health").json()["status"] == "recovering"
    node.reopen_data_dir()
    flipped = flip_lsm_block(node.config.data_dir)
    body = wait_until(
        lambda: (lambda b: b if b["status"] == "corrupt" else None)(httpx.get(f"{url}/health").json()),
        10,
        "the scrub finding the flipped byte after the reopen",
    )
    assert body["corruption"]["found_by"] == "scrub" and body["corruption"]["file"] == flipped.file
