"""Read-only opens, checkpoints, memory controls, disk space, and reads during compaction."""

from __future__ import annotations

import gc
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from lsm_kit import TINY, crash_copy, create_lsm, fill, tables, tree_state, value_of

from engines import create_engine, open_engine
from engines.errors import DiskFullError, EngineError, ReadOnlyError
from engines.lsm import compaction
from engines.lsm.engine import LsmEngine
from engines.lsm.manifest import load_manifest


def test_read_only_open_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "db"
    engine = create_lsm(data)
    written = fill(engine, 400)
    engine.wait_for_background()
    engine.put(b"late", b"only in the WAL")
    engine._wal.flush()  # type: ignore[union-attr]
    crashed = crash_copy(data, tmp_path / "crashed")
    engine.close()
    manifest = load_manifest(crashed)
    (crashed / "sstables" / f"{manifest.next_file_number:06d}.sst").write_bytes(b"uncommitted leftover")
    (crashed / "sstables" / "000777.sst.tmp").write_bytes(b"partial leftover")
    before = tree_state(crashed)
    with open_engine(crashed, mode="ro") as reader:
        assert reader.get(b"late") == b"only in the WAL"
        assert dict(reader.scan(prefix=b"key")) == written
        assert reader.verify().ok
        assert reader.stats().total_keys == len(written) + 1
        reader.checkpoint(tmp_path / "copy-of-ro")
        for action in (
            lambda: reader.put(b"x", b"y"),
            reader.flush,
            reader.compact,
            lambda: reader.compact_level(0),
            lambda: reader.restore_from_wal(1),
        ):  # type: ignore[attr-defined]
            with pytest.raises(ReadOnlyError):
                action()
    assert tree_state(crashed) == before
    with open_engine(tmp_path / "copy-of-ro") as copy:
        assert copy.get(b"late") == b"only in the WAL" and dict(copy.scan(prefix=b"key")) == written


def test_checkpoint_hard_links_tables_and_holds_its_lsn(tmp_path: Path) -> None:
    data = tmp_path / "db"
    with create_lsm(data) as engine:
        written = fill(engine, 300)
        lsn = engine.checkpoint(tmp_path / "snap")
        assert lsn == engine.last_lsn
        engine.put(b"after", b"not in the checkpoint")
        linked = {p.name: p.stat().st_ino for p in tables(tmp_path / "snap")}
        live = {p.name: p.stat().st_ino for p in tables(data)}
        assert linked and all(live.get(name) == inode for name, inode in linked.items() if name in live)
    with open_engine(tmp_path / "snap") as snapshot:
        assert dict(snapshot.scan()) == written
        assert snapshot.last_lsn == lsn
        assert snapshot.verify().ok


def test_memory_controls_flush_and_shrink_at_run_time(tmp_path: Path) -> None:
    data = tmp_path / "db"
    with create_lsm(data, {"memtable_bytes": 1 << 20, "block_bytes": 512}) as engine:
        fill(engine, 500)
        assert engine.stats().details["memtable_bytes"] > 0
        engine.flush_memtables()
        details = engine.stats().details
        assert details["memtable_bytes"] == 0 and details["durable_lsn"] == engine.last_lsn
        for i in range(500):
            assert engine.get(b"key%06d" % i) == value_of(i)
        assert engine.stats().details["block_cache_bytes"] > 0
        result = engine.reduce_cache(0, write_buffer_bytes=8192)
        assert result["block_cache_bytes"] == 0 and result["block_cache_capacity_bytes"] == 0
        assert result["block_cache_capacity_bytes_before"] == 64 << 20
        fill(engine, 200, start=1000)
        details = engine.stats().details
        assert details["write_buffer_bytes"] == 8192 and details["flushes"] >= 4
        assert engine.get(b"key000001") == value_of(1)  # reads work with no cache at all
    with open_engine(data) as engine:
        assert engine.stats().details["write_buffer_bytes"] == 1 << 20  # run-time only


def test_memory_stays_bounded_by_write_buffer_and_cache(tmp_path: Path) -> None:
    settings = {**TINY, "memtable_bytes": 64 * 1024}
    with create_lsm(tmp_path / "db", settings, durability="async", cache_bytes=256 * 1024) as engine:
        peak = 0
        for i in range(0, 6000, 100):
            engine.write_batch([(b"k%08d" % (i + j), b"x" * 200) for j in range(100)])
            for j in range(0, i, 97):
                engine.get(b"k%08d" % j)
            details = engine.stats()
            peak = max(peak, details.memory_usage_bytes - details.details["table_metadata_bytes"])
        bound = 64 * 1024 * (1 + 2) + 256 * 1024 + 64 * 1024  # memtables + cache + one batch of slack
        assert peak <= bound, (peak, bound)


def test_low_memory_profile(tmp_path: Path) -> None:
    with create_engine(tmp_path / "db", backend="lsm", low_memory=True) as engine:
        details = engine.stats().details
        assert details["write_buffer_bytes"] == 16 << 20
        assert len(details["levels"]) == 5  # 5 levels; L1 = memtable x trigger 2; multiplier 8
        assert [level["target_bytes"] for level in details["levels"][1:3]] == [32 << 20, 256 << 20]
        assert details["block_cache_capacity_bytes"] == 8 << 20


def test_compaction_checks_free_space_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "db"
    with create_lsm(data, {**TINY, "l0_trigger": 50}) as engine:
        written = fill(engine, 300)
        engine.flush()
        engine.wait_for_background()
        before = sorted(p.name for p in (data / "sstables").iterdir())
        monkeypatch.setattr(compaction, "free_bytes", lambda path: 4096)
        with pytest.raises(DiskFullError):
            engine.compact()
        assert sorted(p.name for p in (data / "sstables").iterdir()) == before
        assert dict(engine.scan()) == written
        monkeypatch.undo()
        engine.compact()
        assert dict(engine.scan()) == written


def _mount_tmpfs(target: Path, size: str) -> bool:
    target.mkdir()
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)], capture_output=True)
    return done.returncode == 0


def test_a_real_full_disk_is_a_disk_full_error_and_leaves_nothing_half_written(tmp_path: Path) -> None:
    mount = tmp_path / "small"
    if not _mount_tmpfs(mount, "3m"):
        pytest.skip("mounting a tmpfs needs root (a real ENOSPC cannot be simulated here)")
    try:
        data = mount / "db"
        engine = create_lsm(
            data, {**TINY, "memtable_bytes": 256 * 1024, "compression": "none"}, wal_segment_bytes=64 * 1024
        )
        acknowledged: dict[bytes, bytes] = {}
        with pytest.raises(DiskFullError):
            for i in range(100_000):
                key, value = b"k%08d" % i, os.urandom(300)
                engine.put(key, value)
                acknowledged[key] = value
                if i % 500 == 0:
                    engine.flush()
        # A background flush may still be writing when the WAL hits ENOSPC; let it fail first.
        try:
            engine.wait_for_background(timeout=5)
        except EngineError:
            pass
        assert not list((data / "sstables").glob("*.tmp"))
        for meta in load_manifest(data).tables():
            assert (data / meta.relative_path).exists()
        try:
            engine.close()
        except DiskFullError:
            pass  # closing wants to flush; there is no room
        del engine
        gc.collect()  # table readers hold file descriptors until collected
        with open_engine(data, mode="ro") as reader:
            for key, value in acknowledged.items():
                assert reader.get(key) == value
            del reader
    finally:
        gc.collect()
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_reads_go_on_while_a_compaction_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "db"
    engine = create_lsm(data, {**TINY, "l0_trigger": 50})
    written = fill(engine, 600)
    engine.flush()
    original = compaction.merge_chunks
    started = threading.Event()

    def slow_merge(sources):  # type: ignore[no-untyped-def]
        for chunk in original(sources):
            started.set()
            time.sleep(0.01)
            yield chunk

    monkeypatch.setattr(compaction, "merge_chunks", slow_merge)
    worker = threading.Thread(target=engine.compact)
    worker.start()
    assert started.wait(10)
    while_running = 0
    while worker.is_alive():
        began = time.monotonic()
        assert engine.get(b"key000300") == written[b"key000300"]
        assert sum(1 for _ in engine.scan(b"key000100", b"key000200")) == 100
        engine.put(b"during", b"compaction")
        assert time.monotonic() - began < 0.5
        while_running += 1
    worker.join()
    assert while_running > 3
    assert dict(engine.scan()) == written | {b"during": b"compaction"}
    assert isinstance(engine, LsmEngine) and engine.verify().ok
    engine.close()
