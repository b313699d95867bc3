"""What routing syncs through engines.fsio costs: the layer against the bare ``os`` call, same run.

Figures (issue 19: the pass-through must have no measurable cost):
  fdatasync       4 KiB pwrite + fdatasync on a file in --dir: fsio.fdatasync vs os.fdatasync
  pwrite_dsync    4 KiB pwritev(RWF_DSYNC): fsio.pwrite_dsync vs os.pwritev
  dispatch        the layer's own overhead per call, on an fsync the kernel makes free
                  (a file in /dev/shm): fsio.fsync vs os.fsync, in nanoseconds
Ratio = layer / bare (1.00: no cost). Each figure is the best of --repeat runs for both sides.

    .venv/bin/python bench/fsio_bench.py [--dir DIR] [--calls N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engines import fsio  # noqa: E402

__all__ = ["main"]

BLOCK = b"x" * 4096


def _best(function: Callable[[int], None], calls: int, repeat: int) -> float:
    """Best seconds per call over ``repeat`` runs of ``calls`` calls."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        function(calls)
        best = min(best, (time.perf_counter() - started) / calls)
    return best


def _pair(
    name: str,
    layer: Callable[[int], None],
    bare: Callable[[int], None],
    calls: int,
    repeat: int,
    unit: float,
    label: str,
) -> None:
    # Interleave the sides so that load from other processes hits both alike.
    ours, peer = float("inf"), float("inf")
    for _ in range(repeat):
        ours = min(ours, _best(layer, calls, 1))
        peer = min(peer, _best(bare, calls, 1))
    print(f"{name:<14} layer {ours * unit:10.1f} {label}   bare {peer * unit:10.1f} {label}   ratio {ours / peer:5.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=None, help="directory on the disk to measure (default: a temp dir)")
    parser.add_argument("--calls", type=int, default=300, help="synced writes per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs per side; the best is shown")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        fd = os.open(Path(scratch) / "bench", os.O_WRONLY | os.O_CREAT, 0o644)
        try:

            def layer_sync(calls: int) -> None:
                for number in range(calls):
                    os.pwrite(fd, BLOCK, number * 4096)
                    fsio.fdatasync(fd)

            def bare_sync(calls: int) -> None:
                for number in range(calls):
                    os.pwrite(fd, BLOCK, number * 4096)
                    os.fdatasync(fd)

            def layer_dsync(calls: int) -> None:
                for number in range(calls):
                    fsio.pwrite_dsync(fd, BLOCK, number * 4096)

            def bare_dsync(calls: int) -> None:
                for number in range(calls):
                    os.pwritev(fd, [BLOCK], number * 4096, os.RWF_DSYNC)

            _pair("fdatasync", layer_sync, bare_sync, args.calls, args.repeat, 1e6, "us")
            _pair("pwrite_dsync", layer_dsync, bare_dsync, args.calls, args.repeat, 1e6, "us")
        finally:
            os.close(fd)
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=shm) as scratch:
        fd = os.open(Path(scratch) / "bench", os.O_WRONLY | os.O_CREAT, 0o644)
        try:

            def layer_free(calls: int) -> None:
                for _ in range(calls):
                    fsio.fsync(fd)

            def bare_free(calls: int) -> None:
                for _ in range(calls):
                    os.fsync(fd)

            _pair("dispatch", layer_free, bare_free, 200_000, args.repeat, 1e9, "ns")
        finally:
            os.close(fd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
