"""A process that holds a data dir the way a node does, for hang tests.

Usage: lock_holder.py DATA_DIR [silent]
Opens the engine read-write (so it holds ``drconsole.lock``), prints "ready <port>" and sleeps.
With ``silent`` it also listens on a loopback port and never answers: a deadlocked node, whose
kernel still accepts connections while no code answers them.
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

from engines import open_engine


def main() -> None:
    engine = open_engine(Path(sys.argv[1]), mode="rw")
    port = 0
    listener = None
    if len(sys.argv) > 2 and sys.argv[2] == "silent":
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
    sys.stdout.write(f"ready {port}\n")
    sys.stdout.flush()
    while True:
        time.sleep(3600)
    engine.close()  # never reached: the test kills this process


if __name__ == "__main__":
    main()
