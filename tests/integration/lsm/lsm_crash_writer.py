"""Child process of the LSM SIGKILL tests: writes in sync mode while flushes and compactions run.

Usage: lsm_crash_writer.py DATA_DIR START
Prints "ack <n>" once write n is acknowledged, and "mark table|manifest|compaction" when the
engine reaches those points, pausing a few milliseconds there so that the parent's kill lands
inside a flush or a compaction. Values are derived from n.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from lsm_kit import create_lsm  # noqa: E402

from engines import open_engine  # noqa: E402
from engines.lsm import engine as lsm_engine  # noqa: E402
from engines.lsm import sstable_writer, version_set  # noqa: E402

PAUSE = random.Random(os.getpid())


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def instrument() -> None:
    finish = sstable_writer.TableWriter.finish
    save = version_set.save_manifest
    compact = lsm_engine.run_compaction

    def slow_finish(self, **kwargs):  # type: ignore[no-untyped-def]
        say("mark table")
        time.sleep(PAUSE.uniform(0, 0.004))
        meta = finish(self, **kwargs)
        time.sleep(PAUSE.uniform(0, 0.004))
        return meta

    def slow_save(path, manifest):  # type: ignore[no-untyped-def]
        say("mark manifest")
        time.sleep(PAUSE.uniform(0, 0.004))
        save(path, manifest)
        time.sleep(PAUSE.uniform(0, 0.004))

    def slow_compact(job, **kwargs):  # type: ignore[no-untyped-def]
        say("mark compaction")
        return compact(job, **kwargs)

    sstable_writer.TableWriter.finish = slow_finish  # type: ignore[method-assign]
    version_set.save_manifest = slow_save  # type: ignore[assignment]
    lsm_engine.run_compaction = slow_compact  # type: ignore[assignment]


def value_of(n: int) -> bytes:
    return b"v%08d-" % n * (1 + n % 40)


def main() -> None:
    data_dir, start = Path(sys.argv[1]), int(sys.argv[2])
    instrument()
    engine = open_engine(data_dir) if (data_dir / "drconsole.json").exists() else create_lsm(data_dir)
    say("ready")
    n = start
    while True:
        n += 1
        if n % 11 == 0:
            engine.write_batch([(b"b%08d.%d" % (n, i), value_of(n)) for i in range(3)])
        elif n % 13 == 0:
            engine.delete(b"p%08d" % (n - 6))
        else:
            engine.put(b"p%08d" % n, value_of(n))
        say(f"ack {n}")


if __name__ == "__main__":
    main()
