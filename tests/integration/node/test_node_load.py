"""Bounded load and failover under load, with real processes (slow: run by `make test-all`)."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from engines.node.client import NodeClient

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))


@pytest.mark.slow
def test_32_clients_for_30_seconds_without_errors_then_failover(node_process, capsys) -> None:
    from node_bench import http_load, percentile  # type: ignore[import-not-found]

    primary = node_process("primary")
    standby = node_process("standby", "--follow", primary.url)
    acked: dict[bytes, int] = {}
    latencies = http_load(primary.url, 32, 30.0, acked)
    assert "errors" not in capsys.readouterr().out
    assert len(latencies) == len(acked) > 1000
    print(
        f"{len(latencies) / 30:.0f} PUT/s p50 {percentile(latencies, 0.5) * 1000:.1f} ms "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
    )
    primary.kill(signal.SIGKILL)
    killed = time.monotonic()
    with NodeClient(standby.url, timeout=10) as client:
        client.promote()
        client.put(b"after", b"1")
        failover = time.monotonic() - killed
        applied = client.health()["last_lsn"]
        unreplicated = [key for key, lsn in acked.items() if lsn >= applied and client.get(key) is None]
    print(f"failover {failover:.2f} s, acknowledged but unreplicated: {len(unreplicated)}")
    assert failover <= 5.0
