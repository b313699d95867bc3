"""Helpers of the LSM integration tests: small engines, directory fingerprints, damage."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from engines import create_engine, open_engine
from engines.lsm.engine import LsmEngine
from engines.marker import read_marker, write_marker

# Small buffers so that a few hundred writes exercise flushes and several levels of compaction.
TINY: dict[str, Any] = {
    "memtable_bytes": 8 * 1024,
    "l0_trigger": 2,
    "level_base_bytes": 16 * 1024,
    "level_multiplier": 3,
    "target_file_bytes": 8 * 1024,
    "block_bytes": 512,
    "levels": 4,
}


def create_lsm(path: Path, lsm: dict[str, Any] | None = None, **options: Any) -> LsmEngine:
    """``create_engine(path, "lsm")`` with backend options.

    ``create_engine`` takes the backend name as ``backend=``, so the ``backend`` options dict of
    ``EngineOptions`` cannot be passed through it: they are written into the marker, which every
    open reads them from.
    """
    create_engine(path, backend="lsm", **options).close()
    marker = read_marker(Path(path))
    assert marker is not None
    marker.options = {**marker.options, "backend": dict(TINY if lsm is None else lsm)}
    write_marker(Path(path), marker)
    engine = open_engine(path)
    assert isinstance(engine, LsmEngine)
    return engine


def tree_state(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under ``root`` with its size, mtime and content hash (directories by name)."""
    state = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if path.is_file():
            data = path.read_bytes()
            state[relative] = (len(data), path.stat().st_mtime_ns, hashlib.sha256(data).hexdigest())
        else:
            state[relative] = (0, 0, "dir")
    return state


def value_of(i: int) -> bytes:
    return b"value-%06d-" % i * (1 + i % 9)


def fill(engine: LsmEngine, count: int, *, start: int = 0, prefix: bytes = b"key") -> dict[bytes, bytes]:
    written = {}
    for i in range(start, start + count):
        key = prefix + b"%06d" % i
        engine.put(key, value_of(i))
        written[key] = value_of(i)
    return written


def flip(path: Path, offset: int, mask: int = 0x01) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= mask
    path.write_bytes(bytes(raw))


def tables(data_dir: Path) -> list[Path]:
    return sorted((Path(data_dir) / "sstables").glob("*.sst"))


def crash_copy(source: Path, dest: Path) -> Path:
    """``support.crash_copy``, tolerating files that vanish while the copy runs.

    Background flushes and compactions rename temporary files and delete retired tables while
    the directory is being copied; a file gone by the time it is read is simply not in the
    snapshot, which is what a crash at that instant would show as well.
    """
    import shutil

    def copy(src: str, dst: str) -> None:
        try:
            shutil.copy2(src, dst)
        except FileNotFoundError:
            pass

    def ignore(_dir: str, names: list[str]) -> list[str]:
        return [name for name in names if name in ("LOCK", "drconsole.lock")]

    shutil.copytree(source, dest, ignore=ignore, symlinks=True, copy_function=copy)
    return dest
