"""A writer process for host drills: ``python -m drills.writer DATA_DIR LEDGER START COUNT``.

Opens the data dir read-write and puts COUNT keys (sync durability), ledgering each one after
put() returned, until the engine refuses. Prints one JSON line: ``{"acked": N, "error": "..."}``.
A separate process because a service that meets a full disk is a process that then exits: the
engine's state after a failed close stays in that process, not in the drill's.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from drills import Ledger
from engines import open_engine
from engines.errors import EngineError

__all__ = ["main"]


def main(argv: list[str]) -> int:
    data_dir, ledger_path, start, count = Path(argv[0]), Path(argv[1]), int(argv[2]), int(argv[3])
    ledger = Ledger(ledger_path)
    acked, error = 0, None
    try:
        engine = open_engine(data_dir, mode="rw")
    except EngineError as exc:
        engine, error = None, f"{type(exc).__name__} on open: {exc.message}"
    if engine is not None:
        try:
            for number in range(start, start + count):
                key, value = f"k{number:07d}".encode(), os.urandom(64).hex().encode()
                lsn = engine.put(key, value)
                ledger.ack(key, value, lsn if isinstance(lsn, int) else None)
                acked += 1
        except EngineError as exc:
            error = f"{type(exc).__name__}: {exc.message}"
        try:
            engine.close()
        except EngineError as exc:
            error = error or f"{type(exc).__name__} on close: {exc.message}"
    ledger.close()
    sys.stdout.write(json.dumps({"acked": acked, "error": error}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
