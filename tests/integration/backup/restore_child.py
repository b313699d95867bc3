"""A restore run in a child process that stops at a chosen point and waits to be killed (kill -9).

    python restore_child.py REPO TARGET POINT [--until-lsn N] [--replace]

POINT: ``unpack`` (mid-extraction), ``replay`` (mid WAL replay), ``swap`` (complete, just before the
rename into place), ``quarantine`` (after the atomic exchange, before the old dir reaches quarantine).
The child prints ``stopped`` when it is there, then sleeps.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import engines.backup.restore as restore


def stop_here() -> None:
    print("stopped", flush=True)
    time.sleep(3600)


def main() -> None:
    repo, target, point = sys.argv[1], sys.argv[2], sys.argv[3]
    until_lsn = int(sys.argv[sys.argv.index("--until-lsn") + 1]) if "--until-lsn" in sys.argv else None
    replace = "--replace" in sys.argv

    def progress(event: Any) -> None:
        if (
            event.done > 0
            and not event.finished
            and (event.phase, point) in (("restore", "unpack"), ("replay", "replay"))
        ):
            stop_here()

    if point == "swap":
        original_swap = restore._swap_into_place
        restore._swap_into_place = lambda staging, dest: (stop_here(), original_swap(staging, dest))[1]  # type: ignore[assignment]
    if point == "quarantine":
        original_quarantine = restore._quarantine

        def late_quarantine(path: Any, parent: Any, name: str) -> Any:
            stop_here()
            return original_quarantine(path, parent, name)

        restore._quarantine = late_quarantine  # type: ignore[assignment]
    restore.restore_backup(repo, target, until_lsn=until_lsn, replace=replace, progress=progress)
    print("finished", flush=True)


if __name__ == "__main__":
    main()
