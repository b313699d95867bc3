"""Group commit, the async flusher, write failures, and acknowledged writes surviving SIGKILL."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import engines.wal.files as files_module
from engines.errors import DiskFullError, StorageIOError
from engines.wal import Op, RecoveryMode, WalReader, WalWriter


def test_group_commit_sixteen_writers(tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    writer = WalWriter(wal, next_lsn=1, durability="sync")
    acknowledged: dict[int, bytes] = {}
    guard = threading.Lock()
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for number in range(60):
                key = b"t%02d-%03d" % (thread, number)
                lsn = writer.append(Op.PUT, key, b"v" * 100)
                writer.sync(lsn)
                # Acknowledged means durable: the writer says so before we record it.
                assert writer.durable_lsn >= lsn
                with guard:
                    acknowledged[lsn] = key
        except BaseException as exc:  # surfaced below, a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(number,)) for number in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    writes = len(acknowledged)
    assert writes == 16 * 60 and sorted(acknowledged) == list(range(1, writes + 1))
    # Shared fsyncs: fewer than one per write.
    assert 0 < writer.fsync_count < writes
    # Read back while the writer is still open (no close() to flush anything late).
    read = {record.lsn: record.key for record in WalReader(wal).records(mode=RecoveryMode.ABSOLUTE_CONSISTENCY)}
    assert read == acknowledged
    writer.close()


def test_sync_of_an_old_lsn_returns_at_once(tmp_path: Path) -> None:
    with WalWriter(tmp_path / "wal", next_lsn=1) as writer:
        first = writer.append(Op.PUT, b"a", b"1")
        writer.sync()
        count = writer.fsync_count
        writer.append(Op.PUT, b"b", b"2")
        writer.sync(first)  # already durable: no new fsync
        assert writer.fsync_count == count and writer.durable_lsn == first


def test_async_durability_flushes_in_the_background(tmp_path: Path) -> None:
    wal = tmp_path / "wal"
    writer = WalWriter(wal, next_lsn=1, durability="async", async_interval_ms=5)
    try:
        for number in range(100):
            writer.append(Op.PUT, b"k%d" % number, b"v")
        deadline = time.monotonic() + 5
        while writer.durable_lsn < 100 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert writer.durable_lsn == 100 and writer.fsync_count >= 1
        assert len(list(WalReader(wal).records())) == 100  # on disk without close()
    finally:
        writer.close()
    flushers = [t for t in threading.enumerate() if t.name.startswith("wal-flusher") and str(wal) in t.name]
    assert flushers == []  # close() stops the thread


def test_buffer_is_handed_to_the_os_when_full(tmp_path: Path) -> None:
    with WalWriter(tmp_path / "wal", next_lsn=1, buffer_bytes=4096) as writer:
        for number in range(100):
            writer.append(Op.PUT, b"k%d" % number, b"v" * 100)
        path, written = writer.current_segment()  # type: ignore[misc]
        assert written > 0 and path.stat().st_size == written


def _failing(error: int, calls: dict[str, int]) -> object:
    def fail(*_args: object, **_kwargs: object) -> int:
        calls["n"] += 1
        raise OSError(error, os.strerror(error))

    return fail


@pytest.mark.parametrize(("error", "expected"), [(errno.ENOSPC, DiskFullError), (errno.EIO, StorageIOError)])
def test_a_failed_write_refuses_everything_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int, expected: type[Exception]
) -> None:
    wal = tmp_path / "wal"
    writer = WalWriter(wal, next_lsn=1)
    writer.append(Op.PUT, b"a", b"1")
    writer.sync()
    calls = {"n": 0}
    monkeypatch.setattr(files_module.os, "pwritev", _failing(error, calls))
    monkeypatch.setattr(files_module.os, "pwrite", _failing(error, calls))
    lsn = writer.append(Op.PUT, b"b", b"2")
    with pytest.raises(expected):
        writer.sync(lsn)
    assert writer.durable_lsn == 1
    monkeypatch.undo()
    # No hole: the writer does not go on after a write it cannot vouch for.
    with pytest.raises(expected):
        writer.append(Op.PUT, b"c", b"3")
    with pytest.raises(expected):
        writer.sync(lsn)
    writer.close()
    assert [record.lsn for record in WalReader(wal).records()] == [1]


def test_a_failure_under_concurrent_writers_wakes_everyone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Followers waiting on a commit that fails get the error; none of them hangs."""
    wal = tmp_path / "wal"
    writer = WalWriter(wal, next_lsn=1)
    real_pwritev = os.pwritev
    commits = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> int:
        commits["n"] += 1
        if commits["n"] > 20:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwritev(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(files_module.os, "pwritev", flaky)
    monkeypatch.setattr(files_module.os, "pwrite", _failing(errno.ENOSPC, {"n": 0}))
    acknowledged: list[int] = []
    outcomes: list[str] = []

    def work() -> None:
        try:
            while True:
                lsn = writer.append(Op.PUT, b"k", b"v" * 50)
                writer.sync(lsn)
                acknowledged.append(lsn)
        except DiskFullError:
            outcomes.append("disk full")

    threads = [threading.Thread(target=work, daemon=True) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert not any(thread.is_alive() for thread in threads), "a writer thread hangs after the failure"
    assert outcomes == ["disk full"] * 8
    monkeypatch.undo()
    writer.close()
    durable = [record.lsn for record in WalReader(wal).records()]
    assert set(acknowledged) <= set(durable)


def _can_mount_tmpfs(target: Path) -> bool:
    if os.geteuid() != 0:
        return False
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(target)], capture_output=True)
    return result.returncode == 0


def test_real_disk_full(tmp_path: Path) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    if not _can_mount_tmpfs(mount):
        pytest.skip("needs root and permission to mount a 1 MiB tmpfs for a real ENOSPC")
    try:
        writer = WalWriter(mount / "wal", next_lsn=1)
        acknowledged = 0
        with pytest.raises(DiskFullError):
            for number in range(10_000):
                writer.append(Op.PUT, b"k%d" % number, b"v" * 1000)
                writer.sync()
                acknowledged = number + 1
        with pytest.raises(DiskFullError):
            writer.append(Op.PUT, b"after", b"full")
        writer.close()
        records = list(WalReader(mount / "wal").records())  # a torn tail at most
        assert len(records) >= acknowledged > 0
    finally:
        subprocess.run(["umount", str(mount)], check=False)


WRITER = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from engines.wal import Op, WalWriter
    writer = WalWriter(Path(sys.argv[1]), next_lsn=1, durability="sync", segment_bytes=64 * 1024)
    out = threading.Lock()
    def work(thread):
        number = 0
        while True:
            lsn = writer.append(Op.PUT, b"%d-%d" % (thread, number), b"x" * 200)
            writer.sync(lsn)
            with out:
                sys.stdout.write(f"{lsn}\\n")
                sys.stdout.flush()
            number += 1
    for thread in range(4):
        threading.Thread(target=work, args=(thread,), daemon=True).start()
    threading.Event().wait()
    """
)


@pytest.mark.parametrize("round_number", range(3))
def test_acknowledged_writes_survive_sigkill(tmp_path: Path, round_number: int) -> None:
    wal = tmp_path / "wal"
    root = Path(__file__).resolve().parents[3]
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(wal)],
        stdout=subprocess.PIPE,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert process.stdout is not None
    acknowledged: list[int] = []
    deadline = time.monotonic() + 0.3 + round_number * 0.2
    while time.monotonic() < deadline or len(acknowledged) < 50:
        line = process.stdout.readline()
        if not line:
            break
        acknowledged.append(int(line))
    process.send_signal(signal.SIGKILL)
    process.wait()
    acknowledged.extend(int(line) for line in process.stdout.read().split())
    assert len(acknowledged) >= 50
    recovered = [record.lsn for record in WalReader(wal).records(mode=RecoveryMode.TOLERATE_CORRUPTED_TAIL)]
    assert recovered == list(range(1, len(recovered) + 1))  # a clean prefix
    assert max(acknowledged) <= len(recovered)  # every acknowledged write is in it
