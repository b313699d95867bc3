"""Reseeding a standby from a backup, rejoining a diverged old primary, and the token on /wal.

Real nodes (uvicorn in threads) on loopback ports, real engines on files, real backups.
"""

from __future__ import annotations

import concurrent.futures
import json
from pathlib import Path

import httpx
import pytest
from integration.node.node_support import drconsole, free_port, wait_until

from engines import open_engine
from engines.node.client import NodeClient
from engines.node.errors import NodeUnreachableError


def put_many(client: NodeClient, prefix: str, count: int, value: bytes = b"v") -> int:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return max(pool.map(lambda i: client.put(f"{prefix}-{i:04d}".encode(), value + str(i).encode()), range(count)))


def caught_up(url: str, lsn: int) -> bool:
    report = httpx.get(f"{url}/replication").json()
    return bool(report["applied_lsn"] >= lsn and report["lag_records"] == 0)


def contents(data_dir: Path) -> dict[bytes, bytes]:
    """Every live key of a data dir no node holds any more (reserved keys left out)."""
    engine = open_engine(data_dir, "ro")
    try:
        return {key: value for key, value in engine.scan() if not key.startswith(b"__drconsole__/")}
    finally:
        engine.close()


def test_wal_needs_the_token_and_a_standby_holding_it_follows(node_thread) -> None:
    primary = node_thread("primary", token="s3cret")
    assert httpx.get(f"{primary.url}/wal", params={"from_lsn": 1}).status_code == 401
    wrong = httpx.get(f"{primary.url}/wal", params={"from_lsn": 1}, headers={"Authorization": "Bearer s3cre"})
    assert wrong.status_code == 401 and "token" in wrong.json()["error"]
    right = httpx.get(f"{primary.url}/wal", params={"from_lsn": 1}, headers={"Authorization": "Bearer s3cret"})
    assert right.status_code == 200
    for open_path in ("/health", "/ready", "/metrics", "/replication"):
        assert httpx.get(f"{primary.url}{open_path}").status_code == 200, open_path
    follower = node_thread("follower", follow=primary.url, token="s3cret")
    stranger = node_thread("stranger", follow=primary.url)  # no token: refused, applies nothing
    with NodeClient(primary.url) as client:
        last = put_many(client, "k", 20)
    wait_until(lambda: caught_up(follower.url, last))
    assert NodeClient(follower.url).get(b"k-0019") == b"v19"
    report = wait_until(
        lambda: (r := httpx.get(f"{stranger.url}/replication").json())["follower_state"] == "refused" and r
    )
    assert "401" in report["last_error"] and report["applied_lsn"] == 0


def test_a_standby_past_every_wal_source_reseeds_from_the_primary_backup(node_thread, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    primary = node_thread("primary", backup_repo=repo, wal_segment_bytes=64 * 1024)
    standby = node_thread("standby", follow=primary.url)
    with NodeClient(primary.url) as client:
        early = put_many(client, "early", 50)
        wait_until(lambda: caught_up(standby.url, early))
        standby.stop()  # it falls behind while it is down
        put_many(client, "middle", 600, value=b"m" * 400)
        client.delete(b"early-0000")
        client.admin("flush")  # the store covers the WAL: sealed segments are recycled, no archive keeps them
        assert httpx.get(f"{primary.url}/wal", params={"from_lsn": early + 1}).status_code == 410
        backup = client.admin("backup")
        put_many(client, "late", 50)
        last = client.health()["last_lsn"]
    assert backup["type"] == "full" and backup["lsn_end"] > early

    # The standby comes back: neither the primary nor an archive holds LSN early+1, so it reseeds
    # from the backup the primary advertises, and streams the rest.
    standby = node_thread("standby", follow=primary.url)
    wait_until(lambda: caught_up(standby.url, last), timeout=30)
    report = httpx.get(f"{standby.url}/replication").json()
    reseed = report["reseed"]
    assert reseed["state"] == "reseeded" and reseed["backup_id"] == backup["backup_id"]
    assert reseed["lsn"] == backup["lsn_end"] and reseed["previous_lsn"] == early
    assert "holds LSN" in reseed["reason"] or "no longer holds" in reseed["reason"]
    quarantined = Path(reseed["quarantine"])
    assert quarantined.is_dir() and quarantined.parent.name == ".quarantine"
    assert contents(quarantined) == {f"early-{i:04d}".encode(): f"v{i}".encode() for i in range(50)}

    # A new, empty standby with the repository reseeds from it before it streams.
    fresh = node_thread("fresh", follow=primary.url, backup_repo=repo)
    wait_until(lambda: caught_up(fresh.url, last), timeout=30)
    fresh_reseed = httpx.get(f"{fresh.url}/replication").json()["reseed"]
    assert fresh_reseed["state"] == "reseeded" and "empty" in fresh_reseed["reason"]

    for server in (standby, fresh, primary):
        server.stop()
    expected = contents(tmp_path / "primary")
    assert len(expected) == 50 - 1 + 600 + 50
    assert contents(tmp_path / "standby") == expected
    assert contents(tmp_path / "fresh") == expected


def test_rejoin_sets_the_diverged_writes_aside_and_follows_the_new_primary(node_thread, tmp_path: Path) -> None:
    a = node_thread("a")
    b = node_thread("b", follow=a.url)
    with NodeClient(a.url) as client:
        shared = put_many(client, "shared", 30)
    wait_until(lambda: caught_up(b.url, shared))
    with NodeClient(b.url) as client:
        client.promote()  # epoch 1 begins at LSN `shared`
        client.put(b"new-primary", b"kept")
    with NodeClient(a.url) as client:
        # a has not learnt of epoch 1: writes it acknowledges now exist nowhere else
        client.put(b"only-on-a", b"\x00\xffbinary")
        client.delete(b"shared-0001")
        client.put(b"shared-0002", b"changed-on-a")

    plan = httpx.post(f"{a.url}/admin/rejoin", params={"primary": b.url, "dry_run": "true"}).json()["plan"]
    assert plan["diverged"] is True and plan["fork_lsn"] == shared and plan["diverged_records"] == 3
    assert NodeClient(a.url).health()["role"] == "primary"  # a dry run changes nothing
    refused = drconsole("node", "rejoin", a.url, "--primary", b.url, "--json")
    assert refused.returncode == 4 and "3 record(s) past LSN" in refused.stderr
    assert NodeClient(a.url).get(b"only-on-a") == b"\x00\xffbinary"  # still nothing changed

    done = drconsole("node", "rejoin", a.url, "--primary", b.url, "--yes", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["diverged"] is True and result["role"] == "standby" and result["upstream"] == b.url
    export = result["export"]
    assert export["records"] == 3 and export["complete"] is True
    lines = [json.loads(line) for line in Path(export["path"]).read_text().splitlines()]
    assert [(line["op"], line["key"]) for line in lines] == [
        ("put", "only-on-a"),
        ("delete", "shared-0001"),
        ("put", "shared-0002"),
    ]
    assert lines[0]["value_encoding"] == "base64" and lines[2]["value"] == "changed-on-a"
    quarantine = Path(result["quarantine"])
    assert quarantine.parent.name.startswith("diverged-0-") and quarantine.parent.parent.name == ".quarantine"
    assert Path(export["path"]).parent == quarantine.parent  # the export lies beside the data dir

    new_last = NodeClient(b.url).health()["last_lsn"]
    wait_until(lambda: caught_up(a.url, new_last), timeout=20)
    with NodeClient(a.url) as reader:
        assert reader.get(b"new-primary") == b"kept"
        assert reader.get(b"only-on-a") is None  # not mixed into the new history
        assert reader.get(b"shared-0001") == b"v1" and reader.get(b"shared-0002") == b"v2"
        assert reader.health()["epoch"] == 1
    assert httpx.get(f"{a.url}/replication").json()["rejoin"]["diverged"] is True
    a.stop()
    b.stop()
    kept = contents(quarantine)
    assert kept[b"only-on-a"] == b"\x00\xffbinary" and b"shared-0001" not in kept  # the old dir, whole
    assert contents(tmp_path / "a") == contents(tmp_path / "b")


def test_rejoin_without_divergence_just_follows_and_refuses_what_it_cannot_cut(node_thread) -> None:
    a = node_thread("a")
    b = node_thread("b", follow=a.url)
    c = node_thread("c")  # another primary in epoch 0: a split brain with a
    with NodeClient(a.url) as client:
        shared = put_many(client, "shared", 10)
    wait_until(lambda: caught_up(b.url, shared))
    standby_target = httpx.post(f"{c.url}/admin/rejoin", json={"primary": b.url})
    assert standby_target.status_code == 409 and "not a primary" in standby_target.json()["error"]
    split = httpx.post(f"{c.url}/admin/rejoin", json={"primary": a.url})
    assert split.status_code == 409 and "split brain" in split.json()["error"]
    assert httpx.post(f"{c.url}/admin/rejoin", json={}).status_code == 400
    with pytest.raises(NodeUnreachableError, match="unreachable"):  # nothing changed on c
        NodeClient(c.url).admin("rejoin", primary=f"http://127.0.0.1:{free_port()}")
    assert NodeClient(c.url).health()["role"] == "primary"
    NodeClient(b.url).promote()
    NodeClient(b.url).put(b"after", b"1")
    result = NodeClient(a.url).admin("rejoin", primary=b.url)  # a took nothing after the fork
    assert result["diverged"] is False and result["role"] == "standby" and "quarantine" not in result
    last = NodeClient(b.url).health()["last_lsn"]
    wait_until(lambda: caught_up(a.url, last))
    assert NodeClient(a.url).get(b"after") == b"1" and NodeClient(a.url).get(b"shared-0009") == b"v9"
