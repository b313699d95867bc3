"""Which full backup a standby reseeds from: ahead of it, within the primary, on the primary's timeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from engines import create_engine
from engines.backup import Repository, create_backup
from engines.node.errors import ReplicationError
from engines.node.reseed import backup_epoch, choose_backup
from engines.node.state import TimelineEntry, persist_epoch


def test_the_newest_backup_on_the_primary_timeline_is_chosen(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    engine = create_engine(tmp_path / "a", "lsm", node_name="a")
    try:
        for i in range(10):
            engine.put(f"k{i}".encode(), b"v")
        early = create_backup(repo, engine=engine)  # epoch 0, LSN 10
        for i in range(5):
            engine.put(f"late{i}".encode(), b"v")
        forked = create_backup(repo, engine=engine)  # epoch 0, LSN 15: past a fork at 12
        persist_epoch(engine, 3)
        engine.put(b"e3", b"v")
        newest = create_backup(repo, engine=engine)  # epoch 3, LSN 16
    finally:
        engine.close()
    assert backup_epoch(Repository.open(repo), str(forked.backup_id)) == 0
    assert backup_epoch(Repository.open(repo), str(newest.backup_id)) == 3

    history = [TimelineEntry(epoch=1, start_lsn=12)]
    pick = choose_backup(repo, applied_lsn=0, backend="lsm", primary_lsn=None, history=history)
    assert pick.backup_id == newest.backup_id  # epoch 3 is the primary's own line (history ends at 1 here)
    assert (
        choose_backup(repo, applied_lsn=0, backend="lsm", primary_lsn=15, history=history).backup_id == early.backup_id
    )  # 15 was past the fork at 12
    assert choose_backup(repo, applied_lsn=0, backend="lsm", primary_lsn=15).backup_id == forked.backup_id
    with pytest.raises(ReplicationError, match="past this standby's LSN 16"):
        choose_backup(repo, applied_lsn=16, backend="lsm", primary_lsn=None)
    with pytest.raises(ReplicationError, match="another timeline"):
        choose_backup(repo, applied_lsn=10, backend="lsm", primary_lsn=15, history=history)
    with pytest.raises(ReplicationError, match="cow"):
        choose_backup(repo, applied_lsn=0, backend="cow", primary_lsn=None)
