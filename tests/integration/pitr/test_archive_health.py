"""A node whose repository goes away: the WAL stays, /health, /metrics and the console say why and
how much, writes stop at the ceiling (507) before the disk fills, and everything resumes when the
repository is back. Real node processes on loopback; the repository unmounted by renaming it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
from integration.node.node_support import wait_until

from engines.backup import verify_repository
from engines.node.client import NodeClient


def _put(url: str, key: str, value: bytes) -> int:
    return httpx.put(f"{url}/kv/{key}", content=value, timeout=10).status_code


def test_an_unreachable_repository_is_reported_and_writes_stop_at_the_ceiling(node_process, tmp_path: Path) -> None:
    repo, away = tmp_path / "repo", tmp_path / "repo-unmounted"
    node = node_process(
        "orders",
        "--archive",
        str(repo),
        "--archive-timeout",
        "1",
        "--wal-segment-bytes",
        "65536",
        "--wal-hold-max",
        str(400_000),
        engine="rocksdb",
    )
    with NodeClient(node.url) as client:
        client.put(b"seed", b"1")
        client.admin("backup")
        repo.rename(away)
        value = b"x" * 2000
        statuses = [_put(node.url, f"k{n:05d}", value) for n in range(60)]  # ~120 KB: two segments sealed
        assert set(statuses) == {200}

        # The node turns degraded at the first failed attempt, which may come when the first full
        # segment seals (one segment held); the archive timer then seals the rest, so every one of
        # the 120,000 bytes written is held within a few ticks.
        def all_held() -> dict | None:
            health = client.health()
            return health if health["status"] == "degraded" and health["archive"]["held_bytes"] >= 120_000 else None

        health = wait_until(all_held, timeout=15, interval=0.2)
        assert health["reason"].startswith("archive lag: ") and str(repo) in health["reason"]
        assert "does not exist" in health["reason"] and "bytes of WAL" in health["reason"]
        assert health["archive"]["state"] == "failing" and health["archive"]["held_segments"] >= 2
        metrics = client.metrics_text()
        lag = float(
            next(line.split()[1] for line in metrics.splitlines() if line.startswith("drconsole_archive_lag_seconds "))
        )
        assert lag > 0

        # The console reads the same from /health: the card's bkp line and the archive-lag alert.
        from console.tui.widgets.node_card import NodeCard
        from fleet.alerts import Thresholds, evaluate_alerts

        snapshot = _snapshot(node.url)
        assert snapshot.backup.archive_state == "failing" and (snapshot.backup.wal_held_bytes or 0) >= 65536
        alerts = evaluate_alerts(snapshot, Thresholds(archive_lag_seconds=0.5), datetime.now(UTC))
        assert any(alert.rule == "archive-lag" for alert in alerts)
        assert "▲ wal" in NodeCard._archive_text(snapshot) and "held" in NodeCard._archive_text(snapshot)

        # Past the ceiling the node refuses writes with 507, before the disk fills; reads go on.
        refused = None
        for n in range(60, 600):
            code = _put(node.url, f"k{n:05d}", value)
            if code != 200:
                refused = (n, code)
                break
        assert refused is not None and refused[1] == 507, refused
        answer = httpx.put(f"{node.url}/kv/more", content=value, timeout=10)
        assert answer.status_code == 507 and "writes refused" in answer.json()["error"]
        assert client.get(b"k00001") == value
        assert wait_until(lambda: client.health()["archive"]["state"] == "refusing", timeout=10)

        # The repository is back: the timer archives the held WAL and writes are taken again.
        away.rename(repo)
        wait_until(lambda: _put(node.url, "after", b"ok") == 200, timeout=20, interval=0.5)
        wait_until(lambda: client.health()["status"] == "healthy", timeout=20, interval=0.5)
    report = verify_repository(str(repo))
    assert report.ok, report.problems


def _snapshot(url: str):  # type: ignore[no-untyped-def]
    """One tick of the console's HTTP source on this node."""
    from fleet.http import HttpSource
    from fleet.nodes import NodeSpec

    source = HttpSource([NodeSpec(name="orders", url=url)], timeout_seconds=5.0)

    async def tick():  # type: ignore[no-untyped-def]
        try:
            return await source.collect()
        finally:
            await source.aclose()

    fleet = asyncio.run(tick())
    return fleet.nodes[0]
