"""The node's HTTP API on real loopback ports: kv, health, ready, metrics, auth, limits."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engines.errors import ReadOnlyError
from engines.node.client import NodeClient
from engines.node.errors import NodeAuthError, NodeBadRequestError, NodeRefusedError
from engines.node.metrics import METRIC_NAMES


@pytest.mark.parametrize("engine", ["lsm", "cow", "rocksdb"])
def test_kv_round_trip_on_every_backend(node_thread, engine: str) -> None:
    server = node_thread(f"kv-{engine}", engine=engine)
    with NodeClient(server.url) as client:
        odd_key = b"orders/\x00\xff ?&#%"
        first = client.put(odd_key, b"\x01value")
        second = client.put(b"plain", b"")
        assert second == first + 1
        assert client.get(odd_key) == b"\x01value"
        assert client.get(b"plain") == b""
        assert client.get(b"absent") is None
        client.delete(odd_key)
        assert client.get(odd_key) is None
        health = client.health()
        assert health["backend"] == engine and health["role"] == "primary" and health["epoch"] == 0
        assert health["last_lsn"] == second + 1
        assert health["stats"]["total_keys"] == 1


def test_ready_probe_writes_and_reads(node_thread) -> None:
    server = node_thread("ready")
    response = httpx.get(f"{server.url}/ready")
    assert response.status_code == 200
    assert response.json()["ready"] is True and response.json()["probe"] == "write+read"


def test_metrics_parse_and_name_every_design_metric(node_thread) -> None:
    server = node_thread("metrics")
    with NodeClient(server.url) as client:
        client.put(b"k", b"v")
        client.get(b"k")
        text = client.metrics_text()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    for name in METRIC_NAMES:
        assert name.removesuffix("_total") in families, name
    samples = {sample.name: sample.value for family in families.values() for sample in family.samples}
    assert samples["drconsole_last_lsn"] == 1
    assert samples["drconsole_keys"] == 1
    assert samples["drconsole_write_latency_seconds_count"] == 1
    assert samples["drconsole_read_latency_seconds_count"] == 1
    assert 0 < samples["drconsole_disk_usage_ratio"] < 1
    assert 0 < samples["drconsole_memory_usage_ratio"] < 1


def test_admin_needs_the_token_when_configured(node_thread) -> None:
    server = node_thread("token", token="s3cret")
    assert httpx.post(f"{server.url}/admin/flush").status_code == 401
    wrong = httpx.post(f"{server.url}/admin/flush", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "token" in wrong.json()["error"]
    with pytest.raises(NodeAuthError):
        NodeClient(server.url).admin("flush")
    with NodeClient(server.url, token="s3cret") as client:
        assert client.admin("flush")["ok"] is True
    assert httpx.get(f"{server.url}/health").status_code == 200  # reads need no token


def test_bad_requests_are_refused_with_json_errors(node_thread, tmp_path: Path) -> None:
    server = node_thread("limits", max_value_bytes=1000)
    url = server.url
    too_big = httpx.put(f"{url}/kv/k", content=b"x" * 1001)
    assert too_big.status_code == 413 and "limit" in too_big.json()["error"]
    long_key = httpx.put(f"{url}/kv/{'k' * 1025}", content=b"v")
    assert long_key.status_code == 413
    reserved = httpx.put(f"{url}/kv/__drconsole__%2Fready", content=b"v")
    assert reserved.status_code == 400 and "reserved" in reserved.json()["error"]
    assert httpx.get(f"{url}/wal", params={"from_lsn": "x"}).status_code == 400
    assert httpx.post(f"{url}/admin/flush", content=b"{nope").status_code == 400
    assert httpx.post(f"{url}/admin/explode").status_code == 404
    relative = httpx.post(f"{url}/admin/checkpoint", json={"dest": "relative/path"})
    assert relative.status_code == 400
    with NodeClient(url) as client:
        with pytest.raises(NodeBadRequestError):
            client.put(b"k", b"x" * 2000)
        checkpoint = client.admin("checkpoint", dest=str(tmp_path / "copy"))
        assert Path(checkpoint["dest"]).is_dir()
        assert client.admin("reduce-cache", cache_bytes=1 << 20)["ok"]
        assert client.admin("compact")["ok"]


def test_read_only_client_refuses_every_write_before_sending(node_thread) -> None:
    server = node_thread("ro")
    with NodeClient(server.url, read_only=True) as client:
        for call in (
            lambda: client.put(b"k", b"v"),
            lambda: client.delete(b"k"),
            lambda: client.promote(),
            lambda: client.admin("flush"),
        ):
            with pytest.raises(ReadOnlyError):
                call()
        assert client.health()["last_lsn"] == 0  # nothing was written
        assert client.get(b"k") is None


def test_fenced_node_refuses_writes_with_409(node_thread) -> None:
    server = node_thread("fenced")
    with NodeClient(server.url) as client:
        client.put(b"k", b"v")
        client.fence("drill", epoch=5)
        with pytest.raises(NodeRefusedError, match="fenced"):
            client.put(b"k", b"w")
        assert client.get(b"k") == b"v"  # reads still served
        health = httpx.get(f"{server.url}/health")
        assert health.status_code == 503 and health.json()["status"] == "fenced"
