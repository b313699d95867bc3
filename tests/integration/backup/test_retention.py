"""Retention keeps the right tiers, never the only backup a PITR range needs, and prunes only with --yes."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
from backup_support import backup_dirs, cli, export, tree_hash

from engines import create_engine, open_engine
from engines.backup import (
    Repository,
    WalArchive,
    attach_archiver,
    create_backup,
    prune_repository,
    restore_backup,
    verify_repository,
)
from engines.backup.retention import RetentionPolicy

DAY = 86400 * 10**9


def at(year: int, month: int, day: int) -> int:
    return int(dt.datetime(year, month, day, 2, 0, tzinfo=dt.UTC).timestamp()) * 10**9


def _write(source: Path, start: int, count: int, repo: Path | None = None) -> None:
    with open_engine(source, durability="async") as engine:
        if repo is not None:
            attach_archiver(engine, repo)
        for n in range(start, start + count):
            engine.put(b"k%06d" % n, b"v%06d" % n * 4)


@pytest.fixture(scope="module")
def hundred_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A daily backup for 36 days from Thursday 2026-01-01 to 2026-02-05, a few writes between each."""
    root = tmp_path_factory.mktemp("retention")
    source, repo = root / "data", root / "repo"
    create_engine(source, backend="rocksdb", durability="async").close()
    for day in range(36):
        _write(source, day * 10, 10)
        create_backup(repo, data_dir=source, clock_ns=at(2026, 1, 1) + day * DAY)
    return repo


def test_backups_land_in_grandfather_father_son_tiers(hundred_days: Path) -> None:
    tiers = _tiers(hundred_days)
    # ISO weeks 1..6; week 1 starts with the January monthly, so 5 weekly ones.
    assert Counter(tiers.values()) == {"monthly": 2, "weekly": 5, "daily": 29}
    assert tiers["backup_20260101_020000"] == "monthly"  # the first of January
    assert tiers["backup_20260201_020000"] == "monthly"
    assert tiers["backup_20260105_020000"] == "weekly"  # Monday of ISO week 2
    assert tiers["backup_20260102_020000"] == "daily"


def _tiers(repo: Path) -> dict[str, str]:
    return backup_dirs(repo)


def test_prune_without_yes_is_a_dry_run(hundred_days: Path, capsys) -> None:
    before = tree_hash(hundred_days)
    result = cli(capsys, "backup", "prune", "--repo", hundred_days, "--json")
    assert result.code == 0
    payload = result.json()
    assert payload["dry_run"] is True and len(payload["removed"]) == 36 - 7 - 4 - 2
    assert tree_hash(hundred_days) == before
    text = cli(capsys, "backup", "prune", "--repo", hundred_days)
    assert "re-run with --yes" in text.out


def test_prune_with_yes_keeps_7_daily_4_weekly_12_monthly(hundred_days: Path, tmp_path: Path, capsys) -> None:
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(hundred_days, repo)
    result = cli(capsys, "backup", "prune", "--repo", repo, "--yes", "--json")
    assert result.code == 0, result.err
    left = _tiers(repo)
    assert Counter(left.values()) == {"daily": 7, "weekly": 4, "monthly": 2}
    newest_daily = sorted(name for name, tier in left.items() if tier == "daily")
    assert newest_daily == [
        "backup_20260128_020000",
        "backup_20260129_020000",
        "backup_20260130_020000",
        "backup_20260131_020000",
        "backup_20260203_020000",
        "backup_20260204_020000",
        "backup_20260205_020000",
    ]  # Feb 1 is monthly, Feb 2 (a Monday) weekly
    assert sorted(n for n, t in left.items() if t == "weekly") == [
        "backup_20260112_020000",
        "backup_20260119_020000",
        "backup_20260126_020000",
        "backup_20260202_020000",
    ]
    assert sorted(n for n, t in left.items() if t == "monthly") == ["backup_20260101_020000", "backup_20260201_020000"]
    assert not list((repo / ".tmp").iterdir())
    # Archived WAL before the oldest kept backup is gone; what is kept still verifies and restores.
    verified = verify_repository(str(repo))
    assert verified.ok, verified.problems
    restore_backup(repo, tmp_path / "restored")
    assert len(export(tmp_path / "restored")) == 360
    smaller = cli(
        capsys,
        "backup",
        "prune",
        "--repo",
        repo,
        "--keep-daily",
        "2",
        "--keep-weekly",
        "1",
        "--keep-monthly",
        "1",
        "--yes",
        "--json",
    )
    assert smaller.code == 0
    assert Counter(_tiers(repo).values()) == {"daily": 2, "weekly": 1, "monthly": 1}


def test_the_newest_backup_survives_counts_of_zero(tmp_path: Path) -> None:
    source, repo = tmp_path / "data", tmp_path / "repo"
    create_engine(source, backend="rocksdb").close()
    for day in range(3):
        _write(source, day, 1)
        create_backup(repo, data_dir=source, clock_ns=at(2026, 3, 2) + day * DAY)
    plan = prune_repository(repo, RetentionPolicy(0, 0, 0), confirm=True)
    assert [d.backup_id for d in plan.kept] == ["backup_20260304_020000"]
    assert "always kept" in plan.kept[0].reason


def test_the_only_backup_bridging_a_wal_gap_is_kept(tmp_path: Path) -> None:
    source, repo = tmp_path / "data", tmp_path / "repo"
    with create_engine(source, backend="rocksdb", durability="async", wal_segment_bytes=64 * 1024) as engine:
        engine.put(b"a", b"1")
    create_backup(repo, data_dir=source, clock_ns=at(2026, 1, 5))  # monthly
    _write(source, 0, 3000)
    # The data dir archives these itself now; an archive that lost them (written by a drconsole
    # that recycled unarchived WAL, or a file deleted by hand) has a gap here.
    archive = WalArchive(Repository.open(repo))
    with Repository.open(repo).lock():
        archive.remove([segment.name for segment in archive.segments()])
    bridge = create_backup(repo, data_dir=source, clock_ns=at(2026, 1, 6))  # daily
    _write(source, 3000, 3000, repo)  # archived
    create_backup(repo, data_dir=source, clock_ns=at(2026, 1, 7))  # daily, the newest
    assert verify_repository(str(repo)).wal is not None and not verify_repository(str(repo)).ok  # the gap shows
    plan = prune_repository(repo, RetentionPolicy(daily=1), confirm=True)
    kept = {d.backup_id: d.reason for d in plan.kept}
    assert bridge.backup_id in kept and "only backup that recovers" in kept[bridge.backup_id]
    # Without the gap the same policy drops it.
    source2, repo2 = tmp_path / "data2", tmp_path / "repo2"
    with create_engine(source2, backend="rocksdb", durability="async", wal_segment_bytes=64 * 1024) as engine:
        engine.put(b"a", b"1")
    create_backup(repo2, data_dir=source2, clock_ns=at(2026, 1, 5))
    _write(source2, 0, 3000, repo2)
    dropped = create_backup(repo2, data_dir=source2, clock_ns=at(2026, 1, 6))
    _write(source2, 3000, 3000, repo2)
    create_backup(repo2, data_dir=source2, clock_ns=at(2026, 1, 7))
    plan2 = prune_repository(repo2, RetentionPolicy(daily=1), confirm=True)
    assert dropped.backup_id in {d.backup_id for d in plan2.removed}
    assert verify_repository(str(repo2)).ok
