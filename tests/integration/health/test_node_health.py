"""A real node process with real damaged bytes: what /health, /ready, /metrics and /kv say, and what clears it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from integration.health.health_support import ROOT, ServedNode, fill, flip_byte, flip_lsm_block, wait_until

ServedFactory = Callable[..., ServedNode]


def metric(url: str, name: str) -> float:
    for text in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if text.startswith(f"{name} ") or text.startswith(f"{name}{{"):
            return float(text.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exported")


def test_a_read_of_a_damaged_block_makes_the_node_corrupt_until_the_damage_is_gone(
    served: ServedFactory, tmp_path: Path
) -> None:
    node = served("orders", "--scrub-interval", "0")
    fill(node.url, 500)
    health = httpx.get(f"{node.url}/health")
    assert health.status_code == 200 and health.json()["status"] == "healthy" and health.json()["corruption"] is None
    assert httpx.get(f"{node.url}/ready").status_code == 200
    assert metric(node.url, "drconsole_corruption_detected") == 0

    flipped = flip_lsm_block(node.data_dir)
    bad = httpx.get(f"{node.url}/kv/{flipped.keys[0].decode()}")
    assert bad.status_code == 500 and bad.json()["kind"] == "TableCorruptionError"
    healthy_key = b"k000499" if b"k000499" not in flipped.keys else b"k000000"
    assert httpx.get(f"{node.url}/kv/{healthy_key.decode()}").status_code == 200  # other keys keep serving

    health = httpx.get(f"{node.url}/health")
    body = health.json()
    assert health.status_code == 503 and body["status"] == "corrupt"
    corruption = body["corruption"]
    assert (corruption["file"], corruption["offset"], corruption["found_by"]) == (
        flipped.file,
        flipped.block_offset,
        "read",
    )
    assert "checksum" in corruption["detail"]
    since = datetime.fromisoformat(corruption["since"])
    assert since.tzinfo is not None and abs(datetime.now(UTC) - since) < timedelta(minutes=1)
    ready = httpx.get(f"{node.url}/ready")
    assert ready.status_code == 503 and ready.json()["status"] == "corrupt"
    assert metric(node.url, "drconsole_corruption_detected") == 1
    assert httpx.get(f"{node.url}/primary").status_code == 200  # still the one primary: a responder fails over

    # A kill -9 is no repair: the restarted node re-checks the file, still finds the damage.
    node.kill()
    node.start()
    wait_until(lambda: (node.health().get("corruption_recheck") or {}).get("state") == "done", 20, "re-check")
    assert node.health()["status"] == "corrupt"
    verify = httpx.post(f"{node.url}/admin/verify").json()
    assert verify["cleared"] is None and not verify["verify"]["ok"] and verify["status"] == "corrupt"

    # The byte put back (a repair of that one block): a clean verify through the admin API clears it.
    flip_byte(node.data_dir / flipped.file, flipped.offset)
    verify = httpx.post(f"{node.url}/admin/verify").json()
    assert verify["verify"]["ok"] and verify["cleared"]["file"] == flipped.file and verify["status"] == "healthy"
    assert httpx.get(f"{node.url}/ready").status_code == 200
    assert metric(node.url, "drconsole_corruption_detected") == 0
    assert not (node.data_dir / "corruption.json").exists()


def test_an_offline_repair_clears_the_state_at_the_next_start(served: ServedFactory) -> None:
    node = served("ledger", "--scrub-interval", "0")
    fill(node.url, 500)
    flipped = flip_lsm_block(node.data_dir)
    assert httpx.get(f"{node.url}/kv/{flipped.keys[-1].decode()}").status_code == 500
    assert node.health()["status"] == "corrupt"
    node.stop()
    repair = subprocess.run(
        [sys.executable, "-m", "console", "engine", "repair", "--data-dir", str(node.data_dir), "--yes"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert repair.returncode == 0, repair.stdout + repair.stderr
    node.start()
    body = wait_until(lambda: node.health() if node.health()["status"] != "corrupt" else None, 20, "cleared")
    assert body["status"] == "healthy"
    assert "no longer part of the data dir" in body["corruption_cleared"]["reason"]
    assert (node.data_dir / ".quarantine").is_dir()  # the damaged table was moved aside, not deleted


@pytest.mark.parametrize("engine", ["lsm", "cow", "rocksdb"])
def test_the_scrub_finds_a_cold_flipped_byte_within_two_intervals(served: ServedFactory, engine: str) -> None:
    interval = 2.0
    node = served(f"cold-{engine}", "--scrub-interval", str(interval), "--scrub-rate", "4MiB", engine=engine)
    fill(node.url, 500)
    wait_until(lambda: (node.health()["scrub"]["last_pass"] or {}).get("complete"), 3 * interval, "a clean pass")
    assert node.health()["status"] == "healthy"
    file, offset = flip_cold_byte(node.data_dir, engine)
    flipped_at = time.monotonic()
    body = wait_until(
        lambda: node.health() if node.health()["status"] == "corrupt" else None,
        2 * interval + 2,
        "the scrub to find the flipped byte",
    )
    took = time.monotonic() - flipped_at
    assert took <= 2 * interval + 0.5, f"found after {took:.1f} s"
    corruption = body["corruption"]
    assert corruption["found_by"] == "scrub" and corruption["file"] == file, corruption
    if engine == "cow":  # a page-addressed file: the page, and ``offset`` in bytes as for every backend
        assert corruption["page"] == offset // 4096 and corruption["offset"] == corruption["page"] * 4096
    assert metric(node.url, "drconsole_corruption_detected") == 1
    assert metric(node.url, "drconsole_scrub_passes_total") >= 2


def flip_cold_byte(data_dir: Path, engine: str) -> tuple[str, int]:
    """A byte the engine will find damaged, in a file no read has touched; (file, offset)."""
    if engine == "lsm":
        flipped = flip_lsm_block(data_dir)
        return flipped.file, flipped.offset
    if engine == "rocksdb":
        table = max((data_dir / "rocksdb").glob("*.sst"), key=lambda path: path.stat().st_size)
        flip_byte(table, 200)  # inside the first data block (the index and filter sit at the end)
        return f"rocksdb/{table.name}", 200
    import os

    from engines.cow.meta import read_meta_slots
    from engines.cow.page import DATA_FILE, HEADER_SIZE, PageType
    from engines.cow.pagefile import PageFile
    from engines.cow.verify import inspect

    path = data_dir / DATA_FILE
    fd = os.open(path, os.O_RDONLY)
    try:
        slots = read_meta_slots(fd, DATA_FILE, None)
        found = inspect(PageFile(fd, path, slots.page_size, writable=False), slots, slots.newest)
        blob = path.read_bytes()
        leaves = [
            page
            for page in range(2, len(found.reachable))
            if found.reachable[page] and blob[page * slots.page_size + 4] == PageType.LEAF
        ]
    finally:
        os.close(fd)
    offset = leaves[len(leaves) // 2] * slots.page_size + HEADER_SIZE + 40
    flip_byte(path, offset)
    return DATA_FILE, offset
