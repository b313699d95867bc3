"""Real faults on real files and processes, for drills (``drconsole fault inject KIND``).

    from faults import inject, FAULTS
    report = inject("sstable-corrupt", data_dir, seed=7)   # -> FaultReport (what was changed: file, offset, bytes)

Every injector changes only what its report lists. What a fault "loses" (a manifest, a file
renamed) is moved aside into ``<data-dir>/.quarantine/fault-<ts>/`` so a drill can compare;
nothing is deleted. Host faults (disk-full, memory-pressure) live in ``local.py``, the report
types in ``report.py``. Nothing here imports Textual or the console.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from faults.cluster import CLUSTER_FAULTS
from faults.local import disk_full, memory_pressure, stop_memory_hogs
from faults.report import QUARANTINE, FaultChange, FaultError, FaultReport, fault_dir, relative_name

__all__ = [
    "FAULTS",
    "FaultReport",
    "FaultChange",
    "FaultError",
    "inject",
    "find_lock_holder",
    "xor_stream",
    "stop_memory_hogs",
]

LOCKED_SUFFIX = ".locked"


# ------------------------------------------------------------------------------------------- helpers
_rel = relative_name


def _flip(path: Path, offset: int, length: int, rng: random.Random, data_dir: Path) -> FaultChange:
    """XOR ``length`` bytes at ``offset`` with non-zero random masks (every byte really changes)."""
    with open(path, "r+b") as handle:
        handle.seek(offset)
        before = handle.read(length)
        after = bytes(byte ^ rng.randint(1, 255) for byte in before)
        handle.seek(offset)
        handle.write(after)
        handle.flush()
        os.fsync(handle.fileno())
    return FaultChange(_rel(data_dir, path), "flip", offset, len(before), before.hex(), after.hex())


def _restore_bytes(path: Path, change: FaultChange) -> None:
    with open(path, "r+b") as handle:
        handle.seek(int(change.offset or 0))
        handle.write(bytes.fromhex(change.before or ""))
        handle.flush()
        os.fsync(handle.fileno())


def _quarantine_dir(data_dir: Path) -> Path:
    return fault_dir(data_dir)


def _move_aside(path: Path, data_dir: Path) -> FaultChange:
    target_dir = _quarantine_dir(data_dir)
    target = target_dir / f"{path.name}.fault-{int(time.time())}"
    os.replace(path, target)
    return FaultChange(_rel(data_dir, path), "move", detail=f"moved to {_rel(data_dir, target)}")


def _backend(data_dir: Path) -> str:
    from engines.marker import detect_backend

    return detect_backend(data_dir)


def _require(data_dir: Path, *backends: str) -> str:
    if not data_dir.is_dir():
        raise FaultError(f"{data_dir} is not a directory")
    backend = _backend(data_dir)
    if backend not in backends:
        raise FaultError(f"this fault applies to {'/'.join(backends)} data dirs; {data_dir} is {backend}")
    return backend


def _verify_detects(data_dir: Path) -> bool:
    """True when the engine's read-only verify reports a problem (or cannot open the dir at all)."""
    from engines import open_engine

    try:
        with open_engine(data_dir, mode="ro") as engine:
            return not engine.verify().ok
    except Exception:  # noqa: BLE001 - cannot open: detected, certainly
        return True


def _wal_segments(data_dir: Path) -> list[Path]:
    files = sorted((data_dir / "wal").glob("*.wal"))
    files = [path for path in files if path.stat().st_size > 0]
    if not files:
        raise FaultError(f"{data_dir / 'wal'} has no non-empty WAL segment")
    return files


# ------------------------------------------------------------------------------------------- injectors
def _wal_corrupt_tail(data_dir: Path, rng: random.Random, report: FaultReport, **_: Any) -> None:
    segment = _wal_segments(data_dir)[-1]
    size = segment.stat().st_size
    length = min(16, size)
    offset = size - length - rng.randint(0, min(8, size - length))
    report.changes.append(_flip(segment, offset, length, rng, data_dir))
    report.summary = f"flipped {length} bytes near the end of WAL segment {segment.name}"


def _wal_corrupt_middle(data_dir: Path, rng: random.Random, report: FaultReport, **_: Any) -> None:
    segments = _wal_segments(data_dir)
    segment = segments[len(segments) // 2]
    size = segment.stat().st_size
    offset = size // 2 + rng.randint(-min(64, size // 4), min(64, size // 4))
    report.changes.append(_flip(segment, max(0, offset), min(8, size), rng, data_dir))
    report.summary = f"flipped 8 bytes in the middle of WAL segment {segment.name}"


def _corrupt_detected(
    data_dir: Path, candidates: list[tuple[Path, int, int]], rng: random.Random, report: FaultReport, what: str
) -> None:
    """Flip bytes at the first candidate (file, offset, length) that verify detects; undo the misses."""
    if not candidates:
        raise FaultError(f"{data_dir} has no {what} to corrupt")
    for path, offset, length in candidates:
        change = _flip(path, offset, length, rng, data_dir)
        if _verify_detects(data_dir):
            report.changes.append(change)
            report.summary = f"corrupted {what} {change.file} at offset {offset} ({length} bytes)"
            return
        _restore_bytes(path, change)
    raise FaultError(f"no {what} corruption in {data_dir} was detected by verify; everything was put back")


def _page_corrupt(data_dir: Path, rng: random.Random, report: FaultReport, **_: Any) -> None:
    _require(data_dir, "cow")
    from engines.cow.page import DATA_FILE, HEADER_SIZE

    path = data_dir / DATA_FILE
    page_size = _cow_page_size(path)
    blob = path.read_bytes()
    pages = [number for number in range(2, len(blob) // page_size) if blob[number * page_size + 4] in (2, 3)]
    rng.shuffle(pages)
    candidates = [(path, number * page_size + HEADER_SIZE + rng.randint(0, 64), 8) for number in pages[:16]]
    _corrupt_detected(data_dir, candidates, rng, report, "a B+ tree page")


def _cow_page_size(path: Path) -> int:
    from engines.cow.page import DEFAULT_PAGE_SIZE

    marker = path.parent / "drconsole.json"
    try:
        options = json.loads(marker.read_text()).get("options", {})
        return int(options.get("page_size", DEFAULT_PAGE_SIZE))
    except Exception:  # noqa: BLE001
        return DEFAULT_PAGE_SIZE


def _meta_corrupt(data_dir: Path, rng: random.Random, report: FaultReport, **_: Any) -> None:
    _require(data_dir, "cow")
    from engines.cow.page import DATA_FILE, HEADER_SIZE

    path = data_dir / DATA_FILE
    page_size = _cow_page_size(path)
    # both meta pages: with one bad the engine falls back to the other (a torn commit, not a fault)
    for page in (0, 1):
        report.changes.append(_flip(path, page * page_size + HEADER_SIZE + rng.randint(0, 16), 8, rng, data_dir))
    report.summary = f"corrupted both meta pages of {DATA_FILE}"


def _sstable_corrupt(data_dir: Path, rng: random.Random, report: FaultReport, **_: Any) -> None:
    _require(data_dir, "lsm")
    tables = sorted((data_dir / "sstables").glob("*.sst"))
    rng.shuffle(tables)
    candidates = [
        (path, rng.randint(0, max(0, path.stat().st_size // 2)), 8) for path in tables if path.stat().st_size > 16
    ]
    _corrupt_detected(data_dir, candidates, rng, report, "an SSTable")


def _sst_corrupt(data_dir: Path, rng: random.Random, report: FaultReport, **_: Any) -> None:
    _require(data_dir, "rocksdb")
    tables = sorted(data_dir.rglob("*.sst"))
    tables = [path for path in tables if QUARANTINE not in path.parts and path.stat().st_size > 64]
    rng.shuffle(tables)
    candidates = [(path, rng.randint(0, max(0, path.stat().st_size // 3)), 16) for path in tables]
    _corrupt_detected(data_dir, candidates, rng, report, "an SST file")


def _manifest_lost(data_dir: Path, rng: random.Random, report: FaultReport, **_: Any) -> None:
    backend = _require(data_dir, "lsm", "rocksdb")
    if backend == "lsm":
        manifests = [data_dir / "manifest.json"] if (data_dir / "manifest.json").exists() else []
    else:
        manifests = [path for path in sorted(data_dir.rglob("MANIFEST-*")) if QUARANTINE not in path.parts]
    if not manifests:
        raise FaultError(f"{data_dir} has no manifest to lose")
    for path in manifests:
        report.changes.append(_move_aside(path, data_dir))
    report.summary = f"moved {len(manifests)} manifest file(s) into {QUARANTINE}"


def find_lock_holder(data_dir: Path) -> int | None:
    """The pid of the process holding ``<data-dir>/drconsole.lock`` open (via /proc), or None."""
    lock = (data_dir / "drconsole.lock").resolve()
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            for fd in (entry / "fd").iterdir():
                try:
                    if os.readlink(fd) == str(lock):
                        return int(entry.name)
                except OSError:
                    continue
        except OSError:
            continue
    return None


def _signal(data_dir: Path, report: FaultReport, sig: signal.Signals, pid: int | None) -> None:
    pid = pid or find_lock_holder(data_dir)
    if pid is None:
        raise FaultError(f"no process holds {data_dir / 'drconsole.lock'}; nothing to signal")
    os.kill(pid, sig)
    report.changes.append(FaultChange(f"pid {pid}", "signal", detail=sig.name))
    report.summary = f"sent {sig.name} to pid {pid} (the holder of {data_dir.name}'s lock)"
    report.extra["pid"] = pid


def _process_kill(data_dir: Path, rng: random.Random, report: FaultReport, pid: int | None = None, **_: Any) -> None:
    _signal(data_dir, report, signal.SIGKILL, pid)


def _process_hang(data_dir: Path, rng: random.Random, report: FaultReport, pid: int | None = None, **_: Any) -> None:
    _signal(data_dir, report, signal.SIGSTOP, pid)


def _accidental_deletion(
    data_dir: Path, rng: random.Random, report: FaultReport, fraction: float = 0.2, **_: Any
) -> None:
    from engines import open_engine

    with open_engine(data_dir, mode="rw") as engine:
        keys = [key for key, _value in engine.scan()]
        if not keys:
            raise FaultError(f"{data_dir} holds no keys to delete")
        count = max(1, int(len(keys) * fraction))
        start = rng.randint(0, len(keys) - count)
        doomed = keys[start : start + count]
        engine.write_batch([(key, None) for key in doomed])
        engine.flush()
    report.changes.append(
        FaultChange(
            "(engine)", "delete-keys", length=len(doomed), detail=f"deleted keys {doomed[0]!r} .. {doomed[-1]!r}"
        )
    )
    report.summary = (
        f"deleted {len(doomed)} keys ({doomed[0].decode(errors='replace')} .. {doomed[-1].decode(errors='replace')})"
    )
    report.extra["deleted_keys"] = [key.decode(errors="replace") for key in doomed]


_XOR_CHUNK = 16 * 2**20  # a multiple of 4: chunks of randbytes concatenate to the same stream


def xor_stream(seed: int, length: int) -> bytes:
    """The key stream of ``seed``: the same bytes as ``random.Random(seed).randbytes(length)``."""
    generator = random.Random(seed)
    return b"".join(generator.randbytes(min(_XOR_CHUNK, length - done)) for done in range(0, length, _XOR_CHUNK))


def _xor(data: bytes, stream: bytes) -> bytes:
    # one big-integer XOR per chunk: a per-byte loop takes minutes on a 512 MB drill
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(len(data), "big")


def _ransomware(data_dir: Path, rng: random.Random, report: FaultReport, **_: Any) -> None:
    key_seed = rng.randint(0, 2**31)
    files = [
        path
        for path in sorted(data_dir.rglob("*"))
        if path.is_file()
        and QUARANTINE not in path.parts
        and path.name != "drconsole.lock"
        and not path.name.endswith(LOCKED_SUFFIX)
    ]
    if not files:
        raise FaultError(f"{data_dir} has no files to encrypt")
    for path in files:
        locked = path.with_name(path.name + LOCKED_SUFFIX)
        generator = random.Random(key_seed)  # xor_stream(key_seed, size), chunk by chunk: bounded memory
        size = 0
        with open(path, "rb") as source, open(locked, "wb") as target:
            while chunk := source.read(_XOR_CHUNK):
                target.write(_xor(chunk, generator.randbytes(len(chunk))))
                size += len(chunk)
        path.unlink()  # the .locked file is written in full before the original goes
        report.changes.append(FaultChange(_rel(data_dir, path), "encrypt", 0, size, detail=f"renamed {locked.name}"))
    (data_dir / "README_RESTORE.txt").write_text("your data is locked (a drconsole drill)\n")
    report.summary = f"encrypted {len(files)} files in place (seeded XOR, key seed {key_seed}) and renamed them .locked"
    report.extra["key_seed"] = key_seed


def _backup_corrupt(
    data_dir: Path, rng: random.Random, report: FaultReport, repo: Path | None = None, **_: Any
) -> None:
    if repo is None:
        raise FaultError("backup-corrupt needs --repo")
    archives = [path for path in Path(repo).rglob("*.tar.zst") if ".tmp" not in path.parts]
    if not archives:
        raise FaultError(f"{repo} holds no backup archive")
    newest = max(archives, key=lambda path: (path.stat().st_mtime_ns, path.name))
    offset = rng.randint(0, newest.stat().st_size - 1)
    report.changes.append(_flip(newest, offset, 1, rng, Path(repo)))
    report.summary = f"flipped one byte of the newest backup archive {newest.name} at offset {offset}"


def _config_broken(data_dir: Path, rng: random.Random, report: FaultReport, **_: Any) -> None:
    marker = data_dir / "drconsole.json"
    if not marker.exists():
        raise FaultError(f"{marker} does not exist")
    before = marker.read_bytes()
    cut = max(1, len(before) // 2 + rng.randint(-10, 10))
    after = before[:cut] + b"\x00{{ not json"
    aside = _quarantine_dir(data_dir) / f"drconsole.json.fault-{int(time.time())}"
    aside.write_bytes(before)  # the original kept for comparison
    marker.write_bytes(after)
    report.changes.append(
        FaultChange(
            "drconsole.json",
            "rewrite",
            0,
            len(before),
            detail=f"truncated at {cut} and garbage appended; original kept as {_rel(data_dir, aside)}",
        )
    )
    report.summary = "made drconsole.json invalid JSON"


Injector = Callable[..., None]
FAULTS: dict[str, tuple[Injector, str]] = {
    "wal-corrupt-tail": (_wal_corrupt_tail, "bytes flipped in the last WAL record(s)"),
    "wal-corrupt-middle": (_wal_corrupt_middle, "bytes flipped in the middle of a WAL segment"),
    "page-corrupt": (_page_corrupt, "a B+ tree page corrupted (cow)"),
    "meta-corrupt": (_meta_corrupt, "both meta pages corrupted (cow)"),
    "sstable-corrupt": (_sstable_corrupt, "an SSTable data block corrupted (lsm)"),
    "sst-corrupt": (_sst_corrupt, "an SST file corrupted (rocksdb)"),
    "manifest-lost": (_manifest_lost, "the manifest moved aside (lsm manifest.json, rocksdb MANIFEST-*)"),
    "process-kill": (_process_kill, "SIGKILL of the process holding the data dir"),
    "process-hang": (_process_hang, "SIGSTOP of the process holding the data dir"),
    "accidental-deletion": (_accidental_deletion, "a key range deleted through the engine"),
    "ransomware": (_ransomware, "files encrypted in place and renamed .locked"),
    "backup-corrupt": (_backup_corrupt, "a byte flipped in the newest backup archive"),
    "config-broken": (_config_broken, "drconsole.json made invalid"),
    "disk-full": (disk_full, "the data dir's (small) filesystem filled until ENOSPC by a file outside it (not ours)"),
    "memory-pressure": (memory_pressure, "a process holding N MiB of touched memory (--megabytes)"),
}
FAULTS.update(
    CLUSTER_FAULTS
)  # standby-lag, primary-loss, split-brain, isolated-node, network-partition, ... (faults/cluster.py)


def inject(kind: str, data_dir: Path, *, seed: int = 0, **options: Any) -> FaultReport:
    """Inject ``kind`` into ``data_dir``; the report lists every change. FaultError: nothing changed."""
    if kind not in FAULTS:
        raise FaultError(f"no fault {kind!r}; known: {', '.join(sorted(FAULTS))}")
    data_dir = Path(data_dir).absolute()
    report = FaultReport(kind, str(data_dir), seed, time.time())
    FAULTS[kind][0](data_dir, random.Random(seed), report, **options)
    return report
