"""The clients on the cut-off side of a partition: ``python -m drills.side_load URL LEDGER PREFIX``.

Run inside the cut-off node's network namespace (``ip netns exec NS ...``): it writes to URL, the
only node its side of the network reaches, and ledgers each write it gets acknowledged, until
SIGTERM; then prints ``{"acked": N, "failed": N}``. What a cut-off primary acknowledged this way is
what recovery must reconcile (salvage) when the network heals.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from drills.cluster import ClusterLoad
from drills.sandbox import Ledger

__all__ = ["main"]


def main(argv: list[str]) -> int:
    url, ledger_path, prefix = argv[0], Path(argv[1]), argv[2]
    done = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    ledger = Ledger(ledger_path)
    load = ClusterLoad([url], ledger, prefix=prefix, pause=0.01).start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    done.wait(600)  # bounded: a forgotten side load ends by itself
    load.stop()
    ledger.close()
    sys.stdout.write(json.dumps({"acked": load.acked, "failed": load.failed}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
