"""The last step of every engine's repair: open the data dir once so the WAL replays what it holds.

A repair that rolls a store back, drops a damaged table or rebuilds a manifest leaves the writes
the WAL still covers to "the next open". Left at that, the repair's report counts keys the data
dir does not have yet (cow said 0 keys after a rollback the WAL would undo) and lists as lost what
that open brings back (rocksdb's dropped tables). Opening here makes the repair end in the state
the next user will see and lets the report say exactly which LSNs came back.
"""

from __future__ import annotations

from pathlib import Path

from engines.reports import RepairReport

__all__ = ["replay_after_repair"]


def replay_after_repair(path: Path, backend: str, report: RepairReport, *, replay_from: int) -> int:
    """Open ``path`` read-write once (the WAL replays past ``replay_from``), flush, close.

    Records the replayed LSN range in ``report.recovered_lsn_ranges``, the real key count in
    ``report.keys_after`` and an action line. Returns the last LSN the data dir holds.
    """
    from engines.registry import open_engine  # the registry imports every backend, which import us

    with open_engine(Path(path), "rw", backend=backend) as engine:
        last = engine.last_lsn
        engine.flush()
        report.keys_after = engine.stats().total_keys
    if last > replay_from:
        span = (replay_from + 1, last)
        if span not in report.recovered_lsn_ranges:
            report.recovered_lsn_ranges.append(span)
        report.actions.append(
            f"opened the data dir: the WAL replayed LSNs {span[0]}..{span[1]}; {report.keys_after} keys"
        )
    else:
        report.actions.append(f"opened the data dir: nothing to replay; {report.keys_after} keys")
    return last
