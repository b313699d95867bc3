"""A node with ``--archive-timeout 2``: a write is restorable by ``--until`` within 5 s, no ``--incremental``.

Real node processes on loopback, the real CLI in subprocesses, a real repository on disk.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from integration.node.node_support import drconsole

from engines.backup import iso_utc
from engines.node.client import NodeClient


def _restore_until(repo: Path, target: Path, until_ns: int) -> tuple[int, str]:
    done = drconsole(
        "backup",
        "restore",
        "--repo",
        str(repo),
        "--until",
        iso_utc(until_ns),
        "--data-dir",
        str(target),
        "--json",
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


def test_a_write_is_restorable_by_until_within_five_seconds(node_process, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    node = node_process("orders", "--archive", str(repo), "--archive-timeout", "2", engine="lsm")
    with NodeClient(node.url) as client:
        client.put(b"before", b"the base backup holds this")
        backup = client.admin("backup")
        assert backup["type"] == "full"
        time.sleep(0.05)
        client.put(b"order-1", b"paid")
        acked_ns = time.time_ns()
        deadline = time.monotonic() + 5.0
        attempts = 0
        while True:
            attempts += 1
            target = tmp_path / f"restored-{attempts}"
            code, output = _restore_until(repo, target, acked_ns)
            if code == 0:
                break
            assert code == 2 and "window" in output, output  # outside the window until the timer archives it
            assert time.monotonic() < deadline, f"not restorable 5 s after the write: {output}"
            time.sleep(0.2)
        restored_in = time.monotonic() - (deadline - 5.0)
        assert restored_in <= 5.0
        with __import__("engines").open_engine(target, mode="ro") as engine:
            assert engine.get(b"order-1") == b"paid"
            assert engine.get(b"before") == b"the base backup holds this"
        # No incremental backup was taken: the timer sealed the segment and archived it.
        listed = json.loads(drconsole("backup", "list", "--repo", str(repo), "--json").stdout)
        assert [item["type"] for item in listed["backups"]] == ["full"]
        health = client.health()
        assert health["archive"]["repo"] == str(repo)
        assert health["archive"]["state"] == "ok" and health["archive"]["held_bytes"] == 0
        assert health["backup"]["last_backup_id"] == backup["backup_id"]
        # Once archived, nothing waits: the lag is 0 (the next write opens a new segment).
        metrics = client.metrics_text()
        assert "drconsole_archive_lag_seconds 0.0" in metrics
        assert "drconsole_last_backup_age_seconds" in metrics


def test_an_idle_node_keeps_now_inside_the_window(node_process, tmp_path: Path) -> None:
    """No write at all after the backup: the timer still records where the log ends, once a timeout."""
    repo = tmp_path / "repo"
    node = node_process("idle", "--archive", str(repo), "--archive-timeout", "1", engine="cow")
    with NodeClient(node.url) as client:
        client.put(b"k", b"v")
        client.admin("backup")
        moment = time.time_ns()
        time.sleep(2.5)  # more than a timeout with no write
        code, output = _restore_until(repo, tmp_path / "restored", moment + 1_000_000_000)
        assert code == 0, output
