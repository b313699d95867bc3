"""Run a workload on the power-cut file system, cut it at chosen sync calls, check what is left.

A scenario is a function ``workload(run)`` that does its writes under ``run.root`` and records
what was acknowledged with ``run.ack(...)``: an acknowledgement counts only if no cut had
happened when the call returned (the cut happens inside a sync call, before it makes anything
durable, so a call that returned before the cut made its data durable first). After the cut the
workload may go on (every later sync is ignored, as after a real power loss nothing reaches the
disk); ``check(run)`` then runs on the rebooted directory.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from faultfs import PowerCutFS

from engines import fsio

SITES_SEEN: set[str] = set()
_NOOP = os.environ.get("DRCONSOLE_POWERLOSS_NOOP", "")


def noop_sites() -> frozenset[str] | str:
    if _NOOP == "*":
        return "*"
    return frozenset(name for name in _NOOP.split("\n") if name)


class Run:
    def __init__(
        self,
        root: Path,
        cut_at: int | str | None,
        live: tuple[str, ...] = (),
        torn_seed: int | None = None,
        first_block: bool = False,
    ) -> None:
        self.root = root
        self.cut_at = cut_at
        self.acked: list[Any] = []
        self.sent: list[Any] = []  # what was attempted, acknowledged or not (workloads fill it)
        self.fs = PowerCutFS(
            root,
            cut_at=cut_at if isinstance(cut_at, int) else None,
            noop_sites=noop_sites(),
            live=live,
            torn_seed=torn_seed,
            first_block=first_block,
        )

    @property
    def cut(self) -> bool:
        return self.fs.cut

    def ack(self, item: Any) -> bool:
        """Record ``item`` as acknowledged unless the power is already off; True if recorded."""
        if self.fs.cut:
            return False
        self.acked.append(item)
        return True

    def point(self, name: str) -> None:
        """A named moment between two calls where a cut can also happen (``cut_at=name``)."""
        if self.cut_at == name:
            self.fs.cut_now()


Workload = Callable[[Run], None]
Check = Callable[[Run], None]


def run_once(
    root: Path,
    workload: Workload,
    cut_at: int | str | None,
    live: tuple[str, ...] = (),
    torn_seed: int | None = None,
    setup: Callable[[Path], None] | None = None,
    first_block: bool = False,
) -> Run:
    """``setup(root)`` runs on the real file system first: what it leaves is durable."""
    root.mkdir(parents=True, exist_ok=True)
    if setup is not None:
        setup(root)
    run = Run(root, cut_at, live, torn_seed, first_block)
    previous = fsio.install(run.fs)
    try:
        workload(run)
    finally:
        fsio.install(previous)
        SITES_SEEN.update(run.fs.sites)
    run.fs.power_cycle()
    return run


def cut_points(total: int, limit: int) -> list[int]:
    """Every sync call index when there are at most ``limit``, else ``limit`` spread evenly (first and last kept)."""
    if total <= limit:
        return list(range(1, total + 1))
    step = (total - 1) / (limit - 1)
    return sorted({1 + round(step * number) for number in range(limit)})


def explore(
    tmp_path: Path,
    workload: Workload,
    check: Check,
    *,
    limit: int,
    points: tuple[str, ...] = (),
    live: tuple[str, ...] = (),
    setup: Callable[[Path], None] | None = None,
    first_block: bool = False,
) -> int:
    """Cut ``workload`` at up to ``limit`` sync calls, at each named point, and after it ends; check each.

    Each cut is tried twice: forgetting every unsynced write, and keeping a random part of them
    (torn); ``first_block``: a third time, keeping only each file's first overwritten block.

    Returns how many cuts were checked. An assertion names the cut and the sync site it hit.
    """
    dry = run_once(tmp_path / "dry", workload, None, live, setup=setup)
    check(dry)
    total = dry.fs.calls
    assert total > 0, "the workload made no sync call: nothing to cut"
    cuts: list[int | str] = [*cut_points(total, limit), *points]
    variants = ("lost", "torn", "first-block") if first_block else ("lost", "torn")
    for cut_at in cuts:
        for variant in variants:
            seed = zlib.crc32(f"{cut_at}/{total}".encode()) if variant == "torn" else None
            suffix = "" if variant == "lost" else f"-{variant}"
            run = run_once(
                tmp_path / f"cut-{cut_at}{suffix}", workload, cut_at, live, seed, setup, variant == "first-block"
            )
            try:
                check(run)
            except AssertionError as exc:
                where = run.fs.cut_site or cut_at
                how = {"lost": "unsynced writes lost", "torn": f"torn, seed {seed}"}.get(variant, variant)
                raise AssertionError(f"power cut at sync call {cut_at} of {total} ({where}; {how}): {exc}") from exc
    return len(variants) * len(cuts) + 1
