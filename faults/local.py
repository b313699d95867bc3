"""Faults of the host a node runs on: a full disk and memory pressure.

- ``disk-full`` fills the data dir's filesystem until the kernel answers ENOSPC with a file that is
  not drconsole's: ``<parent of the data dir>/foreign-fill-<ts>.bin``, next to the data dir on the
  same filesystem, the way a runaway log or a core dump fills a disk. Nothing is written inside
  the data dir (no record there either): recovery must find the space by probing, and the file
  is not ours to delete (the disk-space playbook reports it). The fault report names it for the
  human who removes it. It refuses a filesystem larger than ``max_fill_bytes`` (1 GiB): filling a
  real disk to prove a point is an incident of its own. Drills build their data dir on a small
  tmpfs (``sandbox_tmpfs``).
- ``memory-pressure`` starts a child process that allocates and touches N MiB (real resident
  memory, seen by psutil), recorded in ``<data-dir>/.quarantine/fault-<ts>-memory-pressure/
  memory-hog.json`` so that recovery can stop it, and only it (pid, start time and marker match).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from engines.fsutil import utc_stamp
from faults.report import QUARANTINE, FaultChange, FaultError, FaultReport, fault_dir, relative_name

__all__ = [
    "disk_full",
    "memory_pressure",
    "memory_hogs",
    "stop_memory_hogs",
    "sandbox_tmpfs",
    "MountRefused",
    "FOREIGN_FILL_PREFIX",
    "HOG_RECORD",
    "HOG_MARKER",
    "MAX_FILL_BYTES",
]

FOREIGN_FILL_PREFIX = "foreign-fill-"
HOG_RECORD = "memory-hog.json"
HOG_MARKER = "drconsole-memory-hog"
MAX_FILL_BYTES = 2**30
HOG_LIFETIME_SECONDS = 3600  # a forgotten hog frees its memory by itself after an hour

# The hog: allocate, write one byte per page (so the memory is resident, not just reserved), say
# "ready", then wait to be stopped. The marker in argv is how recovery recognises it.
_HOG_CODE = """
import sys, time
size = int(sys.argv[1]) * 2**20
block = bytearray(size)
block[::4096] = b"\\x01" * len(range(0, size, 4096))
sys.stdout.write("ready\\n"); sys.stdout.flush()
time.sleep(float(sys.argv[2]))
"""


# ------------------------------------------------------------------------------------------- disk-full
def _fill(path: Path, chunk: int) -> int:
    """Append ``chunk``-byte blocks to ``path`` until ENOSPC; the bytes written."""
    written = 0
    block = b"\0" * chunk
    with open(path, "ab", buffering=0) as handle:
        while True:
            try:
                count = handle.write(block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return written
            if not count:
                return written
            written += count


def disk_full(data_dir: Path, rng: Any, report: FaultReport, max_fill_bytes: int = MAX_FILL_BYTES, **_: Any) -> None:
    """Fill the data dir's filesystem until a write gets ENOSPC (a real full disk, not a simulation)."""
    if not data_dir.is_dir():
        raise FaultError(f"{data_dir} is not a directory")
    usage = shutil.disk_usage(data_dir)
    if usage.total > max_fill_bytes:
        raise FaultError(
            f"{data_dir} is on a {usage.total / 2**30:.1f} GiB filesystem; disk-full fills only a small one "
            f"(at most {max_fill_bytes / 2**20:.0f} MiB): mount a tmpfs (mount -t tmpfs -o size=64m tmpfs DIR), "
            f"put a copy of the data dir there, or run `drconsole drill run disk-full`"
        )
    parent = data_dir.resolve().parent
    if os.stat(parent).st_dev != os.stat(data_dir).st_dev:
        raise FaultError(
            f"{data_dir} is the root of its filesystem: a foreign fill needs room outside the data dir on the "
            f"same filesystem (put the data dir in a folder of the small filesystem)"
        )
    filler = parent / f"{FOREIGN_FILL_PREFIX}{utc_stamp()}.bin"
    written = _fill(filler, 2**20) + _fill(filler, 4096) + _fill(filler, 1)
    free = shutil.disk_usage(data_dir).free
    report.changes.append(
        FaultChange(
            str(filler),
            "fill",
            0,
            written,
            detail=f"a file outside the data dir filled the filesystem until ENOSPC; {free} bytes left",
        )
    )
    report.summary = (
        f"filled the {usage.total / 2**20:.0f} MiB filesystem of {data_dir.name} with "
        f"{written / 2**20:.1f} MiB until ENOSPC (a real full disk), from {filler} outside the data dir"
    )
    report.extra.update(
        {
            "filler": str(filler),
            "filled_bytes": written,
            "free_bytes_after": free,
            "filesystem_bytes": usage.total,
            "method": "filesystem",
        }
    )


class MountRefused(Exception):
    """This machine does not let us mount a tmpfs (not root, or in a container without the capability)."""


@contextmanager
def sandbox_tmpfs(directory: Path, megabytes: int = 64) -> Iterator[Path]:
    """A real small filesystem at ``directory`` for a disk-full drill, unmounted afterwards.

    MountRefused when mounting is not permitted here, with what mount said.
    """
    directory.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={int(megabytes)}m", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise MountRefused((done.stderr or done.stdout).strip() or f"mount exited with {done.returncode}")
    try:
        yield directory
    finally:
        # lazy: a process we could not reap must not leave a mount behind on a shared machine
        subprocess.run(["umount", "-l", str(directory)], capture_output=True, check=False)


# ------------------------------------------------------------------------------------------- memory
def memory_pressure(
    data_dir: Path,
    rng: Any,
    report: FaultReport,
    megabytes: int = 1024,
    lifetime_seconds: float = HOG_LIFETIME_SECONDS,
    **_: Any,
) -> None:
    """Start a process holding ``megabytes`` MiB of touched (resident) memory; recorded for recovery."""
    if not data_dir.is_dir():
        raise FaultError(f"{data_dir} is not a directory")
    available = psutil.virtual_memory().available
    if megabytes * 2**20 > available * 0.5:
        raise FaultError(
            f"{megabytes} MiB is more than half of the {available / 2**20:.0f} MiB available: "
            f"that would hurt the host, not drill it"
        )
    hog = subprocess.Popen(
        [sys.executable, "-c", _HOG_CODE, str(int(megabytes)), str(lifetime_seconds), HOG_MARKER],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    assert hog.stdout is not None
    line = hog.stdout.readline()
    hog.stdout.close()
    if line.strip() != b"ready":
        hog.kill()
        hog.wait()
        raise FaultError(f"the memory hog did not start (exit {hog.poll()})")
    process = psutil.Process(hog.pid)
    rss = process.memory_info().rss
    folder = fault_dir(data_dir, "memory-pressure")
    record = {
        "pid": hog.pid,
        "create_time": process.create_time(),
        "megabytes": int(megabytes),
        "rss_bytes": rss,
        "marker": HOG_MARKER,
        "note": "a drill's memory hog, not a service: safe to stop",
    }
    (folder / HOG_RECORD).write_text(json.dumps(record))
    report.changes.append(
        FaultChange(
            f"pid {hog.pid}",
            "spawn",
            length=rss,
            detail=f"holds {rss / 2**20:.0f} MiB resident; record {relative_name(data_dir, folder / HOG_RECORD)}",
        )
    )
    report.summary = f"started pid {hog.pid} holding {rss / 2**20:.0f} MiB of resident memory"
    report.extra.update({"pid": hog.pid, "rss_bytes": rss, "record": str(folder / HOG_RECORD)})


def memory_hogs(data_dir: Path) -> list[tuple[psutil.Process, dict[str, Any]]]:
    """The live hogs recorded in ``data_dir``'s quarantine: pid, start time and marker all match."""
    found = []
    for record_path in sorted((Path(data_dir) / QUARANTINE).glob(f"fault-*/{HOG_RECORD}")):
        try:
            record = json.loads(record_path.read_text())
            process = psutil.Process(int(record["pid"]))
            same = abs(process.create_time() - float(record["create_time"])) < 0.5
            if same and HOG_MARKER in process.cmdline() and process.status() != psutil.STATUS_ZOMBIE:
                found.append((process, record))
        except (OSError, ValueError, KeyError, psutil.Error):
            continue  # gone already, or not ours: leave it alone
    return found


def stop_memory_hogs(data_dir: Path, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Stop (SIGTERM, then SIGKILL) the hogs a memory-pressure fault started; what was stopped."""
    stopped = []
    for process, record in memory_hogs(data_dir):
        try:
            rss = process.memory_info().rss
            process.terminate()
            try:
                process.wait(timeout)
            except psutil.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        except psutil.NoSuchProcess:
            rss = 0
        stopped.append({"pid": record["pid"], "rss_bytes": rss})
    return stopped
