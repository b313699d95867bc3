"""The handover after a failover (``engines.node.handover``): a promoted node holds client writes until
the old primary's rows are applied by compare-and-set, on a real node over HTTP."""

from __future__ import annotations

import base64
import time

import httpx

from engines.node.client import NodeClient


def _b64(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode()


def test_promote_with_a_hold_refuses_client_writes_until_released(node_thread) -> None:
    node = node_thread("a")
    with NodeClient(node.url) as client:
        client.put(b"k", b"old")
        client.fence("test", force=True)
        answer = client.promote(hold_writes_seconds=30)
        assert answer["role"] == "primary" and answer["writes_held"] is not None
        refused = httpx.put(f"{node.url}/kv/k", content=b"client")
        assert refused.status_code == 503 and "held" in refused.json()["error"]
        assert httpx.get(f"{node.url}/ready").status_code == 503  # not ready while held
        assert client.get(b"k") == b"old"  # reads are not held
        # the salvage: one row the new primary never changed, one it holds already, one conflict
        applied = client.admin(
            "apply",
            rows=[
                {"key": _b64(b"k"), "value": _b64(b"salvaged"), "expect": _b64(b"old")},
                {"key": _b64(b"gone"), "value": _b64(b"v"), "expect": _b64(b"other")},
                {"key": _b64(b"new"), "value": _b64(b"n"), "expect": None},
            ],
        )
        assert [row["outcome"] for row in applied["rows"]] == ["applied", "conflict", "applied"]
        assert applied["applied"] == 2 and applied["lsn"] is not None
        assert client.get(b"k") == b"salvaged" and client.get(b"new") == b"n" and client.get(b"gone") is None
        again = client.admin("apply", rows=[{"key": _b64(b"k"), "value": _b64(b"salvaged"), "expect": _b64(b"old")}])
        assert again["rows"][0]["outcome"] == "present" and again["lsn"] is None
        released = client.admin("release-writes")
        assert released["released"] is True
        client.put(b"k", b"client")
        assert client.get(b"k") == b"client"


def test_a_hold_ends_by_itself_at_its_deadline(node_thread) -> None:
    node = node_thread("a")
    with NodeClient(node.url) as client:
        client.fence("test", force=True)
        client.promote(hold_writes_seconds=0.5)
        assert httpx.put(f"{node.url}/kv/x", content=b"1").status_code == 503
        time.sleep(0.7)
        assert httpx.put(f"{node.url}/kv/x", content=b"1").status_code in (200, 201, 204)


def test_apply_refuses_bad_rows_and_a_standby(node_thread) -> None:
    node = node_thread("a")
    with NodeClient(node.url) as client:
        bad = httpx.post(f"{node.url}/admin/apply", json={"rows": [{"key": "not base64!"}]})
        assert bad.status_code == 400 and "base64" in bad.json()["error"]
        assert httpx.post(f"{node.url}/admin/apply", json={"rows": "x"}).status_code == 400
        assert httpx.post(f"{node.url}/admin/promote", json={"hold_writes_seconds": 10_000}).status_code == 400
        client.fence("test", force=True)
        fenced = httpx.post(f"{node.url}/admin/apply", json={"rows": []})
        assert fenced.status_code == 409
