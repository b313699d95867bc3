"""Bringing back what a repair lost: the WAL's history re-applied, and a backup's keys nothing wrote since.

A repair that quarantines a table (or pages) loses the newest versions of the keys in it. Two
sources give them back, and neither revives a key that was deleted:

* ``backup.replay_archive``: every record from the archive's first LSN to the end of the local
  WAL, re-applied in order (a delete stays a delete). Keys written only before the archive began
  are left as the repair left them.
* ``backup.fill_untouched``: those older keys, from the newest backup restored into a scratch
  copy (at its LSN E). A key in the backup that the repaired store lacks and that no record after
  E wrote or deleted still has, today, the value it had at E: it was lost by the repair, and
  copying it back is exact. That needs every record after E (the archive from E+1 on, then the
  local WAL, with no gap); when the history has a gap nothing is copied (``fill_gap`` is the
  inexact fill, for a responder who accepts that deleted keys may come back).

Both report ``recovered_lsn_ranges`` for the run's accounting (playbooks.accounting).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from playbooks.actions.backup_actions import describe_repo
from playbooks.actions.base import ActionContext, ActionResult, action

__all__: list[str] = []

_BATCH = 1000


def _history(engine: Any, archive: Any, start: int) -> tuple[list[Any], int, str | None]:
    """Every WAL record from LSN ``start`` to the engine's last: the archive's, then the local WAL's.

    Returns (records, the first LSN they begin at, a gap or None). Without a gap the records are
    contiguous from the first to ``engine.last_lsn``; ``start`` below the archive's first segment
    begins at that segment (``replay_archive`` asks for "as far back as there is").
    """
    from engines.wal import RecoveryMode, WalReader

    last = engine.last_lsn
    segments = archive.segments(present=True) if archive is not None else []
    records: list[Any] = []
    first = max(start, segments[0].first_lsn) if segments else None
    covered = (first - 1) if first is not None else start - 1
    if first is not None:
        for record in WalReader(archive.path).records(from_lsn=first, to_lsn=last, mode=RecoveryMode.POINT_IN_TIME):
            if record.lsn != covered + 1:
                return records, first, f"the archive misses LSNs {covered + 1}..{record.lsn - 1}"
            records.append(record)
            covered = record.lsn
    local = WalReader(engine.wal_dir).records(from_lsn=covered + 1, to_lsn=last, mode=RecoveryMode.POINT_IN_TIME)
    for record in local:
        if first is None:
            first, covered = record.lsn, record.lsn - 1  # no archive: the local WAL from its first record
        if record.lsn != covered + 1:
            return (
                records,
                first,
                (
                    f"the archive ends at LSN {covered} and the local WAL resumes at {record.lsn}: "
                    f"LSNs {covered + 1}..{record.lsn - 1} are in neither"
                ),
            )
        records.append(record)
        covered = record.lsn
    if first is None:
        first = last + 1
    if covered < last and records:
        return records, first, f"LSNs {covered + 1}..{last} are in neither the archive nor the local WAL"
    return records, first, None


def _archive(repo: str | None) -> Any:
    from engines.backup.archive import WalArchive
    from engines.backup.repository import Repository

    return WalArchive(Repository.open(str(repo))) if repo else None


@action("backup.replay_archive", writes=True, describe=describe_repo)
def replay_archive(context: ActionContext, *, repo: str | None = None) -> ActionResult:
    """Re-apply the archived WAL, then the local WAL, over a repaired store, as new writes.

    Replaying every record from the archive's first LSN to the end of the local log, in order, gives
    every key written in that span its newest value again (a delete stays a delete). The records are
    written anew (new LSNs), so the change log stays one unbroken history. Without a repository (or
    with an empty archive) the local WAL alone is replayed, from its first record: a store whose
    WAL still reaches back needs no backup.
    """
    from engines.registry import open_engine

    data_dir = context.require_data_dir()
    archive = _archive(repo)
    with open_engine(data_dir, mode="rw") as engine:
        last = engine.last_lsn
        records, first, gap = _history(engine, archive, 1)
        if gap is not None:
            return ActionResult(False, gap, {"from_lsn": first})
        replayed = 0
        for record in records:
            engine.write_batch(record.entries())
            replayed += 1
            if replayed % _BATCH == 0:
                context.progress(replayed, len(records), "records", "replay")
        engine.flush()
    if not records:
        return ActionResult(True, "no WAL record to replay (archive and local WAL empty)", {"replayed": 0})
    archived = archive is not None and archive.segments(present=True)
    source = "the archive and the local WAL" if archived else "the local WAL"
    return ActionResult(
        True,
        f"re-applied {replayed} records (LSN {first}..{last}) from {source}",
        {"replayed": replayed, "from_lsn": first, "to_lsn": last, "recovered_lsn_ranges": [[first, last]]},
        touched=[str(data_dir)],
    )


@action("backup.fill_untouched", writes=True, describe=describe_repo)
def fill_untouched(context: ActionContext, *, repo: str | None, source: str) -> ActionResult:
    """Copy back from the backup restored at ``source`` every key the store lacks that no record after it wrote.

    Exact, or nothing: when a record after the backup's LSN cannot be read (a gap between the
    archive and the local WAL), no key is copied and the step says why.
    """
    from engines.keys import is_reserved
    from engines.registry import open_engine
    from engines.transfer import write_batches

    data_dir = context.require_data_dir()
    origin = Path(source)
    with open_engine(origin, mode="ro") as backup:
        as_of = backup.last_lsn
    archive = _archive(repo)
    present = changed = 0
    with open_engine(data_dir, mode="rw") as live:
        last = live.last_lsn
        records, first, gap = _history(live, archive, as_of + 1)
        if gap is None and last < as_of:
            gap = f"the store's history ends at LSN {last}, before the backup's {as_of}"
        elif gap is None and last > as_of and (not records or records[0].lsn != as_of + 1):
            begins = records[0].lsn if records else last + 1
            gap = f"the backup ends at LSN {as_of}, and the WAL kept begins at {begins}"
        if gap is not None:
            return ActionResult(
                True,
                f"nothing copied back: the history after the backup is not whole ({gap}); "
                "fill_gap=true copies the missing keys anyway (deleted keys may come back)",
                {"restored": 0, "exact": False},
            )
        touched = {key for record in records for key, _value in record.entries()}

        def untouched_and_missing() -> Iterator[tuple[bytes, bytes]]:
            nonlocal present, changed
            for key, value in backup.scan():
                if is_reserved(key):
                    continue  # drconsole's own (a node's ready probe): not user data
                if key in touched:
                    changed += 1  # written or deleted after the backup: the WAL's value is the one
                elif live.get(key) is not None:
                    present += 1
                else:
                    yield key, value

        with open_engine(origin, mode="ro") as backup:
            restored = write_batches(live, untouched_and_missing())
        live.flush()
    return ActionResult(
        True,
        f"copied back {restored} key(s) the store lacked and nothing wrote after the backup (LSN {as_of}); "
        f"{present} present and {changed} written since were left as they are",
        {
            "restored": restored,
            "exact": True,
            "as_of_lsn": as_of,
            # The backup holds every write up to its LSN; the WAL after it is whole and was replayed
            # (backup.replay_archive) or left the keys it touched alone here.
            "recovered_lsn_ranges": [[0, as_of]],
        },
        touched=[str(data_dir)],
    )
