"""Failover and rejoin with real ``drconsole node serve`` processes: kill -9 under load, SIGSTOP.

Slow (real processes, seconds of load): run by ``make test-all``.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from integration.node.node_support import drconsole, wait_until
from integration.node.test_reseed_rejoin import caught_up, contents

from engines import open_engine
from engines.errors import EngineError
from engines.node.client import NodeClient

pytestmark = pytest.mark.slow


class Load:
    """``writers`` threads putting distinct keys into ``url`` until stopped; what was acknowledged."""

    def __init__(self, url: str, prefix: str, writers: int = 6) -> None:
        self.url = url
        self.prefix = prefix
        self.acked: dict[bytes, tuple[int, bytes]] = {}  # key -> (lsn, value)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._write, args=(n,), daemon=True) for n in range(writers)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _write(self, writer: int) -> None:
        with NodeClient(self.url, timeout=3.0) as client:
            number = 0
            while not self._stop.is_set():
                key, value = f"{self.prefix}-{writer}-{number:06d}".encode(), f"value-{number}".encode()
                try:
                    self.acked[key] = (client.put(key, value), value)
                except EngineError as exc:
                    self.errors.append(str(exc))
                    return  # the node died: what it acknowledged is in `acked`
                number += 1


def test_kill_9_under_load_promote_and_rejoin_the_diverged_old_primary(node_process, tmp_path: Path) -> None:
    a = node_process("a")
    b = node_process("b", "--follow", a.url)
    with Load(a.url, "a") as load_a:
        wait_until(lambda: len(load_a.acked) > 300, timeout=20)
        a.kill(signal.SIGKILL)  # under load, in sync durability: every acknowledged put is on a's disk
        load_a.stop()
    promoted = drconsole("node", "promote", b.url, "--json")
    assert promoted.returncode == 0, promoted.stderr
    fork = json.loads(promoted.stdout)["last_lsn"]
    unreplicated = sorted(lsn for lsn, _ in load_a.acked.values() if lsn > fork)
    print(f"async RPO at kill -9: {len(unreplicated)} of {len(load_a.acked)} acknowledged writes not on the standby")

    # While a is down, writes land on its data dir that b never sees (as if it took them cut off).
    engine = open_engine(tmp_path / "a", "rw")
    local = {b"local-only-1": engine.put(b"local-only-1", b"x"), b"local-only-2": engine.put(b"local-only-2", b"y")}
    engine.close()

    with Load(b.url, "b", writers=4) as load_b:
        wait_until(lambda: len(load_b.acked) > 100, timeout=20)
        # The old primary comes back knowing b: it learns of epoch 1 and fences itself.
        a = node_process("a", "--peer", b.url, port=a.port)
        wait_until(lambda: httpx.get(f"{a.url}/health").json()["role"] == "fenced")
        rejoined = drconsole("node", "rejoin", a.url, "--primary", b.url, "--yes", "--json")
        assert rejoined.returncode == 0, rejoined.stderr
        wait_until(lambda: len(load_b.acked) > 400, timeout=30)
    assert load_b.errors == []
    result = json.loads(rejoined.stdout)
    assert result["diverged"] is True and result["plan"]["fork_lsn"] == fork
    export = result["export"]
    # Every record past the fork: the acknowledged ones, the local ones, and any a made durable but
    # died before acknowledging.
    assert export["complete"] is True and export["first_lsn"] == fork + 1
    assert export["last_lsn"] == max(local.values()) and export["records"] == max(local.values()) - fork
    exported = {line["key"]: line for line in map(json.loads, Path(export["path"]).read_text().splitlines())}
    assert set(exported) >= {key.decode() for key, (lsn, _) in load_a.acked.items() if lsn > fork} | {
        "local-only-1",
        "local-only-2",
    }
    assert Path(result["quarantine"]).is_dir()

    last_b = NodeClient(b.url).health()["last_lsn"]
    wait_until(lambda: caught_up(a.url, last_b), timeout=30)
    with NodeClient(a.url) as on_a, NodeClient(b.url) as on_b:
        for key, (lsn, value) in load_a.acked.items():
            if lsn <= fork:
                assert on_b.get(key) == value and on_a.get(key) == value  # replicated before the kill
        for key, (_, value) in list(load_b.acked.items())[::7]:
            assert on_a.get(key) == value  # the new primary's acknowledged writes reached the rejoined node
        assert on_a.get(b"local-only-1") is None and on_b.get(b"local-only-1") is None
    assert a.kill(signal.SIGTERM) == 0 and b.kill(signal.SIGTERM) == 0
    on_b_disk = contents(tmp_path / "b")
    assert all(on_b_disk[key] == value for key, (_, value) in load_b.acked.items())  # no acknowledged write lost
    assert contents(tmp_path / "a") == on_b_disk


def _standby_view(primary_url: str, name: str) -> dict[str, Any]:
    standbys = httpx.get(f"{primary_url}/replication").json()["standbys"]
    return next(standby for standby in standbys if standby["name"] == name)


def test_lag_rises_while_the_standby_is_paused_and_returns_to_zero(node_process) -> None:
    primary = node_process("p")
    standby = node_process("s", "--follow", primary.url)
    assert standby.process is not None
    with Load(primary.url, "k", writers=4) as load:
        wait_until(lambda: len(load.acked) > 200 and _standby_view(primary.url, "s")["lag_records"] < 200)
        standby.process.send_signal(signal.SIGSTOP)
        try:
            time.sleep(2.0)
            paused = _standby_view(primary.url, "s")
        finally:
            standby.process.send_signal(signal.SIGCONT)
        assert paused["lag_records"] > 50 and paused["lag_seconds"] >= 1.5, paused
        assert 'drconsole_standby_lag_seconds{standby="s"}' in httpx.get(f"{primary.url}/metrics").text
        peak = 0.0
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            peak = max(peak, httpx.get(f"{standby.url}/replication").json()["lag_seconds"] or 0.0)
        # Under the same load, resumed, it catches up: its commit-to-apply time falls back under a second.
        wait_until(lambda: httpx.get(f"{standby.url}/replication").json()["lag_seconds"] < 0.5, timeout=20)
        assert _standby_view(primary.url, "s")["lag_seconds"] < 1.0
    assert load.errors == []
    last = NodeClient(primary.url).health()["last_lsn"]
    wait_until(lambda: caught_up(standby.url, last), timeout=20)
    # lag_seconds drops to 0 at the first poll that finds nothing new (within one long-poll wait)
    report = wait_until(lambda: (r := httpx.get(f"{standby.url}/replication").json())["lag_seconds"] == 0.0 and r)
    assert report["lag_records"] == 0 and report["lag_bytes"] == 0 and report["lag_seconds"] == 0.0
    view = _standby_view(primary.url, "s")
    assert view["lag_records"] == 0 and view["lag_seconds"] == 0.0
    print(
        f"paused 2 s under load: primary saw {paused['lag_records']} records, {paused['lag_seconds']:.2f} s behind; "
        f"standby's own peak after resuming {peak:.2f} s"
    )


def test_a_standby_behind_a_pruned_archive_reseeds_from_the_newest_backup(node_process, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    small = ("--wal-segment-bytes", str(64 * 1024))
    primary = node_process("p", "--archive", str(repo), *small)
    standby = node_process("s", "--follow", primary.url, "--archive", str(repo))
    with NodeClient(primary.url) as client:
        for i in range(40):
            client.put(f"early-{i:03d}".encode(), b"e")
        wait_until(lambda: caught_up(standby.url, 40))
        assert standby.kill(signal.SIGTERM) == 0  # down for maintenance; the primary goes on
        for i in range(250):  # some 500 KiB: eight segments
            client.put(f"bulk-{i:03d}".encode(), b"b" * 2048)
        client.admin("flush")  # sealed segments go to the archive, then leave the primary
        backup = client.admin("backup")
        for i in range(40):
            client.put(f"late-{i:03d}".encode(), b"l")
        client.admin("flush")
        last = client.health()["last_lsn"]
    # Retention drops the archived WAL the backup covers: LSN 41 is nowhere any more.
    pruned = drconsole("backup", "prune", "--repo", str(repo), "--yes", "--json")
    assert pruned.returncode == 0, pruned.stderr
    assert json.loads(pruned.stdout)["wal_segments_removed"] > 0
    assert httpx.get(f"{primary.url}/wal", params={"from_lsn": 41}).status_code == 410
    standby = node_process("s", "--follow", primary.url, "--archive", str(repo), port=standby.port)
    wait_until(lambda: caught_up(standby.url, last), timeout=60)
    reseed = httpx.get(f"{standby.url}/replication").json()["reseed"]
    assert reseed["state"] == "reseeded" and reseed["backup_id"] == backup["backup_id"]
    assert reseed["previous_lsn"] == 40 and Path(reseed["quarantine"]).is_dir()
    assert standby.kill(signal.SIGTERM) == 0 and primary.kill(signal.SIGTERM) == 0
    assert b"reseeded from backup" in standby.process.stderr.read()  # type: ignore[union-attr]  # logged
    assert contents(tmp_path / "s") == contents(tmp_path / "p")
