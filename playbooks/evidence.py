"""Local evidence about a data dir, shared by probes and actions; everything here only reads.

Is a process holding the dir (its engine lock)? Which volume is it on and how full? Are the
store's files there? Did the last process stop cleanly? None of these create a file: the lock is
tested on the existing lock file only, and engines are opened read-only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from engines.base import LOCK_NAME, WAL_DIR
from engines.errors import EngineError
from engines.fsutil import QUARANTINE_DIR, tree_size
from engines.locking import is_data_dir_locked
from engines.marker import MARKER_NAME, detect_backend
from engines.registry import open_engine
from engines.volume import VolumeUsage, volume_usage

__all__ = [
    "backend_from_files",
    "lock_held",
    "lock_holders",
    "mount_point",
    "MountUsage",
    "disk_usage",
    "store_files",
    "missing_store_files",
    "UncleanShutdown",
    "unclean_shutdown",
    "component_sizes",
    "human_bytes",
    "existing_parent",
]

# The files without which each backend's store cannot open.
_STORE_FILES = {"cow": ("data.cow",), "lsm": ("manifest.json",), "rocksdb": ("rocksdb/CURRENT",)}


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def existing_parent(path: Path) -> Path:
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def lock_held(data_dir: Path) -> bool:
    """Whether a process holds ``data_dir``'s engine lock (tested without creating the lock file)."""
    return is_data_dir_locked(data_dir)


def lock_holders(data_dir: Path) -> list[tuple[int, str]]:
    """(pid, command line) of the processes we can see holding the lock file open (best effort)."""
    import psutil

    target = str((Path(data_dir) / LOCK_NAME).resolve())
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(item.path == target for item in process.open_files()):
                found.append((process.pid, " ".join(process.info["cmdline"] or [])[:200]))
        except (psutil.Error, OSError):
            continue
    return found


def mount_point(path: Path) -> Path:
    path = existing_parent(path).resolve()
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


@dataclass(frozen=True)
class MountUsage:
    path: Path
    mount: Path
    total: int
    used: int
    free: int

    @property
    def ratio(self) -> float:
        return VolumeUsage(self.total, self.used, self.free).ratio

    def sentence(self, threshold: float) -> str:
        return (
            f"disk {self.ratio * 100:.0f} % used on {self.mount} ({human_bytes(self.free)} free of "
            f"{human_bytes(self.total)}); threshold {threshold * 100:.0f} %"
        )


def disk_usage(path: Path) -> MountUsage:
    where = existing_parent(path)
    usage = volume_usage(where)  # as df counts: free is what an unprivileged writer can still get
    return MountUsage(
        path=Path(path), mount=mount_point(where), total=usage.total, used=usage.used, free=usage.available
    )


def store_files(data_dir: Path, backend: str) -> tuple[str, ...]:
    return _STORE_FILES.get(backend, ())


_FILE_HINTS = (
    ("data.cow", "cow"),
    ("manifest.json", "lsm"),
    ("sstables", "lsm"),
    ("rocksdb/CURRENT", "rocksdb"),
    ("CURRENT", "rocksdb"),
)


def backend_from_files(data_dir: Path) -> str | None:
    """The backend the files show, ignoring the marker (as the guide's ``get_backend_type`` does)."""
    for name, backend in _FILE_HINTS:
        if (Path(data_dir) / name).exists():
            return backend
    return None


def missing_store_files(data_dir: Path) -> tuple[str | None, list[str]]:
    """(backend or None, the files that should be there and are not)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return None, [str(data_dir)]
    try:
        backend = detect_backend(data_dir)
    except EngineError:
        found = backend_from_files(data_dir)  # a damaged marker: the files still say what is there
        if found is None:
            return None, [MARKER_NAME, "the store's files (data.cow, manifest.json or rocksdb/CURRENT)"]
        backend = found
    missing = [name for name in store_files(data_dir, backend) if not (data_dir / name).exists()]
    if not (data_dir / MARKER_NAME).exists():
        missing.append(MARKER_NAME)
    return backend, missing


@dataclass(frozen=True)
class UncleanShutdown:
    unflushed_records: int
    first_lsn: int
    last_lsn: int
    torn_tail: str | None  # "reason in segment at offset", when the WAL ends in a damaged record


def unclean_shutdown(data_dir: Path) -> UncleanShutdown:
    """What the WAL says about how the last writer stopped (a clean close flushes the store).

    Raises EngineError when the dir cannot be opened read-only.
    """
    from engines.wal import WalReader, list_segments

    data_dir = Path(data_dir)
    validation = WalReader(data_dir / WAL_DIR).validate()
    torn = None
    if validation.corruption is not None:
        segments = list_segments(data_dir / WAL_DIR)
        if segments and segments[-1].path.name == validation.corruption.segment:
            problem = validation.corruption
            torn = f"{problem.reason} in {problem.segment} at offset {problem.offset}"
    with open_engine(data_dir, mode="ro") as engine:
        # The store's durable LSN is the engine contract's hook; a clean close leaves it == last_lsn.
        durable = int(engine.durable_lsn)
        last = engine.last_lsn
    return UncleanShutdown(max(0, last - durable), durable + 1, last, torn)


def component_sizes(data_dir: Path) -> dict[str, int]:
    """Bytes per component of a data dir: WAL, store, snapshots, quarantine, other."""
    data_dir = Path(data_dir)
    sizes = {
        "wal": tree_size(data_dir / WAL_DIR),
        "quarantine": tree_size(data_dir / QUARANTINE_DIR),
        "snapshots": tree_size(data_dir / "snapshots"),
    }
    total = tree_size(data_dir)
    sizes["store"] = max(0, total - sum(sizes.values()))
    sizes["total"] = total
    return sizes
