"""One disk figure everywhere, and it is ``df``'s.

The figure is read by `df` itself, a real node process (``/health`` and ``/metrics``), the
console's snapshot of that node, the console's local source and the playbooks' disk check.

On a filesystem that reserves blocks for root (ext4 reserves 5 % by default; this machine's
root far more), the old formulas disagreed with df and with one another:
- the node counted the reserved blocks as room;
- the playbooks counted them as used.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

from engines.node.client import NodeClient
from engines.volume import volume_usage
from fleet.http import HttpSource
from fleet.local import LocalSource
from fleet.nodes import NodeSpec
from fleet.snapshot import DiskUsage
from playbooks.evidence import disk_usage

# Other tests write beside this one while it reads: figures read a moment apart may differ by that.
SLACK_BYTES = 256 << 20


def _df(path: Path) -> tuple[int, int, int, int]:
    """``df``'s size, used and available bytes, and its use% for ``path``."""
    out = subprocess.run(
        ["df", "-B1", "--output=size,used,avail,pcent", str(path)], capture_output=True, text=True, check=True
    ).stdout.splitlines()[-1]
    size, used, avail, pcent = out.split()
    return int(size), int(used), int(avail), int(pcent.rstrip("%"))


def _close_to_df(ratio: float, path: Path) -> None:
    pcent = _df(path)[3]  # df rounds up to a whole per cent
    assert pcent - 1 <= ratio * 100 <= pcent + 0.5, (ratio, pcent)


def test_volume_usage_counts_as_df(tmp_path: Path) -> None:
    size, used, avail, _ = _df(tmp_path)
    found = volume_usage(tmp_path)
    assert found.total == size
    assert abs(found.used - used) < SLACK_BYTES and abs(found.available - avail) < SLACK_BYTES
    _close_to_df(found.ratio, tmp_path)
    # The playbooks' check says the same, and the room it names is what df calls available.
    checked = disk_usage(tmp_path / "not-made-yet")
    _close_to_df(checked.ratio, tmp_path)
    assert abs(checked.free - avail) < SLACK_BYTES
    assert str(round(checked.ratio * 100)) in checked.sentence(0.85)


def test_a_snapshot_without_available_bytes_falls_back_to_size_less_used() -> None:
    """A node older than ``available_bytes``: the console still shows a figure, as it did."""
    old = DiskUsage(volume_total_bytes=1000, volume_used_bytes=250)
    assert old.usage_ratio == 0.25 and old.free_bytes == 750
    new = DiskUsage(volume_total_bytes=1000, volume_used_bytes=250, volume_available_bytes=250)
    assert new.usage_ratio == 0.5 and new.free_bytes == 250


def test_node_console_and_playbooks_show_one_figure(node_process, tmp_path: Path) -> None:
    node = node_process("orders", engine="lsm")
    with NodeClient(node.url) as client:
        client.put(b"k", b"v")
        health = client.health()
        disk = health["disk"]
        assert disk["path"] == str(node.data_dir)
        size, used, avail, _ = _df(node.data_dir)
        assert disk["total_bytes"] == size
        assert abs(disk["used_bytes"] - used) < SLACK_BYTES
        assert abs(disk["available_bytes"] - avail) < SLACK_BYTES
        gauge = next(
            float(line.split()[1])
            for line in client.metrics_text().splitlines()
            if line.startswith("drconsole_disk_usage_ratio ")
        )
        _close_to_df(gauge, node.data_dir)

    async def tick(source):  # type: ignore[no-untyped-def]
        try:
            return await source.collect()
        finally:
            await source.aclose()

    over_http = asyncio.run(tick(HttpSource([NodeSpec(name="orders", url=node.url)], timeout_seconds=5.0)))
    card = over_http.nodes[0].disk
    assert card.usage_ratio is not None and card.free_bytes is not None
    _close_to_df(card.usage_ratio, node.data_dir)
    assert abs(card.free_bytes - avail) < SLACK_BYTES
    node.stop()

    local = asyncio.run(tick(LocalSource([NodeSpec(name="orders", data_dir=str(node.data_dir))])))
    card = local.nodes[0].disk
    assert card.usage_ratio is not None and card.free_bytes is not None
    _close_to_df(card.usage_ratio, node.data_dir)
    assert abs(card.free_bytes - avail) < SLACK_BYTES
    _close_to_df(disk_usage(node.data_dir).ratio, node.data_dir)


def test_reserved_blocks_are_not_room(tmp_path: Path) -> None:
    """Where this filesystem reserves blocks, the available room is less than size less used."""
    found = volume_usage(tmp_path)
    raw = os.statvfs(tmp_path)
    reserved = (raw.f_bfree - raw.f_bavail) * raw.f_frsize
    assert found.total - found.used - found.available == reserved
    if reserved:
        assert found.ratio > found.used / found.total
