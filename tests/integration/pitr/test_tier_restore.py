"""``backup restore --from daily|weekly|monthly [--date YYYY-MM-DD]`` and ``backup list`` filtered the same way."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from support import run_cli_in_process

from engines import create_engine, open_engine
from engines.backup import create_backup


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path):  # type: ignore[no-untyped-def]
    from console.cli.main import main

    return run_cli_in_process(capsys, main, *args)


def at(year: int, month: int, day: int) -> int:
    return int(dt.datetime(year, month, day, 2, 0, tzinfo=dt.UTC).timestamp()) * 10**9


def _state(data: Path) -> dict[bytes, bytes]:
    with open_engine(data, mode="ro") as engine:
        return dict(engine.scan())


@pytest.fixture(scope="module")
def tiers(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[bytes, bytes]]]:
    """Backups on Thu 2026-01-01 (monthly), Fri 01-02 (daily), Mon 01-05 (weekly), Tue 01-06 (daily)."""
    root = tmp_path_factory.mktemp("tiers")
    data, repo = root / "data", root / "repo"
    states: dict[str, dict[bytes, bytes]] = {}
    create_engine(data, backend="lsm", durability="async").close()
    for day in (1, 2, 5, 6):
        with open_engine(data, durability="async") as engine:
            for n in range(20):
                engine.put(b"k%02d" % n, b"day %d" % day)
            engine.put(b"day%d" % day, b"present")
        result = create_backup(repo, data_dir=data, clock_ns=at(2026, 1, day))
        states[result.backup_id or ""] = _state(data)
        states[f"2026-01-0{day}"] = states[result.backup_id or ""]
    return repo, states


@pytest.mark.parametrize(
    ("arguments", "day"),
    [
        (("--from", "monthly"), "2026-01-01"),
        (("--from", "weekly"), "2026-01-05"),
        (("--from", "daily"), "2026-01-06"),
        (("--from", "daily", "--date", "2026-01-02"), "2026-01-02"),
        (("--date", "2026-01-05"), "2026-01-05"),
        (("--from", "monthly", "--date", "20260101"), "2026-01-01"),  # the reference scripts' spelling
    ],
)
def test_restore_picks_the_newest_backup_of_the_tier_and_date(tiers, tmp_path: Path, capsys, arguments, day) -> None:
    repo, states = tiers
    target = tmp_path / "restored"
    result = cli(capsys, "backup", "restore", "--repo", repo, *arguments, "--data-dir", target, "--json")
    assert result.code == 0, result.err
    assert result.json()["backup_id"] == "backup_" + day.replace("-", "") + "_020000"
    assert _state(target) == states[day]


def test_no_backup_of_that_tier_on_that_date_exits_2_and_lists_the_dates(tiers, tmp_path: Path, capsys) -> None:
    repo, _states = tiers
    target = tmp_path / "restored"
    result = cli(
        capsys, "backup", "restore", "--repo", repo, "--from", "weekly", "--date", "2026-01-02", "--data-dir", target
    )
    assert result.code == 2
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and "no weekly backup taken on 2026-01-02" in lines[0] and "2026-01-05" in lines[0]
    assert not target.exists()
    for bad in (("--from", "hourly"), ("--date", "yesterday"), ("backup_20260101_020000", "--from", "daily")):
        refused = cli(capsys, "backup", "restore", "--repo", repo, *bad, "--data-dir", target)
        assert refused.code == 2 and not target.exists()


def test_list_filters_by_tier_and_date(tiers, capsys) -> None:
    repo, _states = tiers
    daily = cli(capsys, "backup", "list", "--repo", repo, "--from", "daily", "--json").json()
    assert [b["backup_id"] for b in daily["backups"]] == ["backup_20260102_020000", "backup_20260106_020000"]
    on_day = cli(capsys, "backup", "list", "--repo", repo, "--date", "2026-01-05", "--json").json()
    assert [(b["backup_id"], b["tier"]) for b in on_day["backups"]] == [("backup_20260105_020000", "weekly")]
    none = cli(capsys, "backup", "list", "--repo", repo, "--from", "monthly", "--date", "2026-01-06")
    assert none.code == 0 and none.out.startswith("no backups (monthly, taken on 2026-01-06) in ")
