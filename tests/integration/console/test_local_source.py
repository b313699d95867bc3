"""LocalSource on real data directories: what it reads, and that it writes nothing at all."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from console_testkit import tree_digest
from support import available_backends

from engines import create_engine
from fleet import Health, LocalSource, NodeSpec, Thresholds
from fleet.local import ProcessFinder

BACKENDS = available_backends()
pytestmark = pytest.mark.skipif(not BACKENDS, reason="no backend built yet")


def make(path: Path, backend: str, keys: int) -> Path:
    with create_engine(path, backend=backend) as engine:
        for index in range(keys):
            engine.put(f"k{index:05d}".encode(), b"v" * 100)
    return path


def collect(source: LocalSource):
    async def main():
        try:
            return await source.collect()
        finally:
            await source.aclose()

    return asyncio.run(main())


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_is_read_read_only_and_nothing_changes(tmp_path: Path, backend: str) -> None:
    data = make(tmp_path / "fleet" / backend, backend, 40)
    before = tree_digest(tmp_path / "fleet")
    # Thresholds that never fire: the host's real memory and disk must not decide this test.
    quiet = Thresholds(disk_usage=1.0, memory_usage=1.0)
    snapshot = collect(LocalSource([NodeSpec(name="n", data_dir=data)], thresholds=quiet))
    assert tree_digest(tmp_path / "fleet") == before  # not a byte, not a lock file, not a rocksdict config
    [node] = snapshot.nodes
    assert (node.engine, node.reachable, node.health, node.total_keys, node.last_lsn) == (
        backend,
        True,
        Health.OK,
        40,
        40,
    )
    assert node.health_reason.startswith("data dir opens read-only")
    assert node.disk.volume_total_bytes and node.disk.volume_used_bytes
    assert node.disk.components.wal_bytes and node.disk.components.wal_bytes > 0
    assert node.disk.components.quarantine_bytes == 0
    assert node.memory.host_total_bytes and node.memory.usage_ratio is not None


def test_a_standby_copy_lags_its_primary_and_a_missing_dir_is_unreachable(tmp_path: Path) -> None:
    backend = BACKENDS[0]
    with create_engine(tmp_path / "primary", backend=backend) as engine:
        for index in range(10):
            engine.put(f"k{index}".encode(), b"v")
        engine.checkpoint(tmp_path / "standby")
        for index in range(7):
            engine.put(f"late{index}".encode(), b"v")
    specs = [
        NodeSpec(name="p", data_dir=tmp_path / "primary"),
        NodeSpec(name="s", data_dir=tmp_path / "standby", role="standby", upstream="p"),
        NodeSpec(name="gone", data_dir=tmp_path / "nowhere"),
    ]
    moments = iter([datetime(2024, 5, 14, 12, 0, tzinfo=UTC), datetime(2024, 5, 14, 12, 0, 31, tzinfo=UTC)])
    source = LocalSource(specs, thresholds=Thresholds(), clock=lambda: next(moments))

    async def main():
        try:
            return await source.collect(), await source.collect()
        finally:
            await source.aclose()

    first, second = asyncio.run(main())
    standby = first.node("s")
    assert standby is not None and standby.replication.upstream == "p" and standby.replication.lag_records == 7
    gone = first.node("gone")
    assert gone is not None and not gone.reachable and gone.health == Health.DOWN
    assert "does not exist" in gone.health_reason
    assert gone.unreachable_since == datetime(2024, 5, 14, 12, 0, tzinfo=UTC)
    later = second.node("gone")
    assert later is not None and [alert.rule for alert in later.alerts] == ["node-down"]
    assert later.unreachable_since == gone.unreachable_since


def test_quarantine_and_snapshots_are_counted_apart(tmp_path: Path) -> None:
    data = make(tmp_path / "n", BACKENDS[0], 5)
    (data / ".quarantine" / "20240514-sst").mkdir(parents=True)
    (data / ".quarantine" / "20240514-sst" / "000007.sst").write_bytes(b"x" * 5000)
    node = collect(LocalSource([NodeSpec(name="n", data_dir=data)])).nodes[0]
    assert node.disk.components.quarantine_bytes == 5000


def test_the_node_process_is_found_by_its_data_dir(tmp_path: Path) -> None:
    data = make(tmp_path / "n", BACKENDS[0], 1)
    # Any process whose command line names the data dir stands for the node process here.
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "--data-dir", str(data)])
    try:
        time.sleep(0.2)
        assert ProcessFinder(rescan_seconds=0).rss_bytes(data) is not None
        node = collect(LocalSource([NodeSpec(name="n", data_dir=data)])).nodes[0]
        assert node.memory.node_rss_bytes is not None and node.memory.node_rss_bytes > 1_000_000
    finally:
        process.kill()
        process.wait()
    assert ProcessFinder(rescan_seconds=0).rss_bytes(data) is None


def test_the_newest_backup_is_read_when_there_is_a_repository(tmp_path: Path) -> None:
    backup = pytest.importorskip("engines.backup")
    data = make(tmp_path / "n", BACKENDS[0], 5)
    backup.create_backup(tmp_path / "repo", data_dir=data)
    before = tree_digest(tmp_path / "repo")
    node = collect(LocalSource([NodeSpec(name="n", data_dir=data, backup_repo=tmp_path / "repo")])).nodes[0]
    assert tree_digest(tmp_path / "repo") == before
    assert node.backup.last_backup_at is not None
    assert datetime.now(UTC) - node.backup.last_backup_at < timedelta(minutes=5)
    assert node.backup.verified is False and node.disk.components.backups_bytes
    missing = collect(LocalSource([NodeSpec(name="n", data_dir=data, backup_repo=tmp_path / "none")])).nodes[0]
    assert missing.backup.error is not None and "does not exist" in missing.backup.error
