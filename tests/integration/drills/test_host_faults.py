"""Host faults for real: ENOSPC from a real (tmpfs) filesystem, a hog's real resident memory, a real
SIGSTOP; and the drills that recover from them through the autopilot."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from drills import SCENARIOS, host, run_drill, scenario_pairs
from engines import create_engine, open_engine
from engines.errors import DiskFullError
from faults import FaultError, inject
from faults.local import FOREIGN_FILL_PREFIX, MountRefused, sandbox_tmpfs
from playbooks.runner import Runner, RunOptions


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    try:
        with sandbox_tmpfs(tmp_path / "volume", 48) as volume:
            yield volume
    except MountRefused as exc:
        pytest.skip(f"mounting a tmpfs is not permitted here ({exc}): no real ENOSPC to test")


def _load(data: Path, count: int, *, keep: int) -> dict[bytes, bytes]:
    """``count`` 8 KiB writes in 64 KiB WAL segments, ``keep`` covered segments kept (for standbys)."""
    acked = {}
    with create_engine(
        data, backend="lsm", durability="sync", wal_segment_bytes=65536, wal_keep_segments=keep
    ) as engine:
        for number in range(count):
            engine.put(b"k%05d" % number, b"v%05d" % number * 1365)
            acked[b"k%05d" % number] = b"v%05d" % number * 1365
        engine.flush()
    return acked


def _fill_and_refuse(data: Path, acked: dict[bytes, bytes]) -> Path:
    """The fault, then a writer meeting the full disk; the foreign file the fault wrote."""
    report = inject("disk-full", data)
    filler = Path(report.extra["filler"])
    assert filler.parent == data.parent and filler.name.startswith(FOREIGN_FILL_PREFIX)  # outside the data dir
    assert filler.stat().st_size == report.extra["filled_bytes"] > 8 * 2**20
    assert not (data / ".quarantine").exists(), "the fault wrote inside the data dir"
    assert shutil.disk_usage(data).free < 64 * 1024
    engine = open_engine(data, mode="rw")
    with pytest.raises(DiskFullError, match="no space left"):
        for number in range(10_000, 20_000):
            engine.put(b"k%05d" % number, b"x" * 8192)
            acked[b"k%05d" % number] = b"x" * 8192
    with pytest.raises(DiskFullError):
        engine.close()
    return filler


def test_a_full_disk_is_freed_by_what_is_ours_and_foreign_files_are_reported_untouched(
    small_volume: Path, tmp_path: Path
) -> None:
    data = small_volume / "srv" / "data"
    data.parent.mkdir()
    acked = _load(data, 600, keep=64)  # ~5 MiB of covered WAL kept for standbys: ours to reclaim
    runaway = small_volume / "app-debug.log"  # not ours either: named by the playbook, never touched
    runaway.write_bytes(b"x" * 2**18)
    filler = _fill_and_refuse(data, acked)
    filled = filler.stat().st_size
    result = Runner().run(
        "disk-space", data, RunOptions(assume_yes=True, waive_safety_copy="no room for a safety copy: disk full")
    )
    steps = {step.id: step for step in result.steps}
    assert steps["reclaim"].status == "succeeded" and "WAL segment" in steps["reclaim"].summary
    assert f"{filler} (" in steps["foreign"].summary and f"{runaway} (" in steps["foreign"].summary
    # Our space is back, the foreign file stays: writes resume, the disk stays over 85 %: a human decides.
    assert result.status == "failed"
    verdict = steps["verdict"]
    assert verdict.summary.startswith("manual intervention required: writes can resume"), verdict.summary
    assert str(filler) in verdict.summary
    assert filler.stat().st_size == filled and runaway.stat().st_size == 2**18  # reported, never deleted
    assert shutil.disk_usage(data).free >= 4 * 2**20
    with open_engine(data, mode="rw") as engine:
        assert all(engine.get(key) == value for key, value in acked.items())
        engine.put(b"after", b"space")


def test_a_disk_full_of_foreign_files_with_nothing_of_ours_to_free_fails_and_says_so(
    small_volume: Path, tmp_path: Path
) -> None:
    data = small_volume / "srv" / "data"
    data.parent.mkdir()
    acked = _load(data, 40, keep=0)  # the WAL is one open segment: nothing of ours is reclaimable
    filler = _fill_and_refuse(data, acked)
    filled = filler.stat().st_size
    result = Runner().run(
        "disk-space", data, RunOptions(assume_yes=True, waive_safety_copy="no room for a safety copy: disk full")
    )
    steps = {step.id: step for step in result.steps}
    assert "nothing of ours is reclaimable" in steps["reclaim"].summary
    assert result.status == "failed"
    assert steps["verdict"].summary.startswith("manual intervention required: still full"), steps["verdict"].summary
    assert f"{filler} (" in steps["verdict"].summary
    assert filler.stat().st_size == filled  # never deleted, even with nothing else to free
    with open_engine(data, mode="ro") as engine:
        assert all(engine.get(key) == value for key, value in acked.items())
    with pytest.raises(DiskFullError):  # honest: still full, writes still fail
        with open_engine(data, mode="rw") as engine:
            engine.put(b"after", b"x" * 2**20)


def test_disk_full_refuses_a_large_filesystem(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    if shutil.disk_usage(data).total <= 2**30:
        pytest.skip("tmp_path is on a filesystem of 1 GiB or less here")
    with pytest.raises(FaultError, match="fills only a small one"):
        inject("disk-full", data)
    assert not (data / ".quarantine").exists()


# memory-pressure touches 4 GiB (10-30 s on this box): in the slow suite only, below.
@pytest.mark.parametrize(("scenario", "engine"), [("process-hang", "lsm"), ("disk-full", "cow")])
def test_host_fault_drill_recovers_within_its_targets(tmp_path: Path, scenario: str, engine: str) -> None:
    result = run_drill(scenario, engine, writes_before_backup=120, writes_after_backup=80, workdir=tmp_path)
    assert result.error is None, result.error
    assert result.recovered, result.health
    assert result.passed, (result.rto_seconds, result.lost_writes, result.playbooks)
    assert result.lost_writes == 0 and result.acked_writes >= 100
    used = [run["playbook"] for run in result.playbooks if run["status"] == "succeeded"]
    if scenario == "disk-full":  # serving again, but the playbook says an operator must finish the job
        assert used == [] and {run["playbook"] for run in result.playbooks} == {"disk-space"}
        assert "manual intervention required: writes can resume" in result.playbooks[-1]["message"]
    else:
        assert used == [{"process-hang": "process-hang", "memory-pressure": "memory-recovery"}[scenario]]
    if scenario == "process-hang":
        assert result.fault["changes"][0]["detail"] == "SIGSTOP"
        assert result.fault["acked_during_recovery"] >= 20  # the load kept writing through the node's API
        assert result.rto_seconds is not None and result.rto_seconds <= SCENARIOS[scenario].target_rto_seconds
    if scenario == "disk-full":
        under = result.fault["under_fault"]
        assert under["error"].startswith("DiskFullError"), under
        assert "tmpfs" in result.fault["method"]
        # freed by what is ours (the covered, archived WAL); the foreign fill reported, never touched
        assert result.fault["foreign_fill_intact"] is True
        assert result.fault["freed_bytes"] >= 4 * 2**20
        assert result.fault["outcome"] == "needs-operator"
        assert [entry["path"] for entry in result.fault["foreign_files"]][0] == result.fault["filler"]
        assert "needs an operator" in result.health
        from console.cli.drill import _result_line

        assert "\n  needs an operator: disk " in _result_line(result)  # what `drill run` prints
    assert not list(tmp_path.glob("drill-*")), "the sandbox was not removed"
    mounted = subprocess.run(["mount"], capture_output=True, text=True, check=False).stdout
    assert str(tmp_path) not in mounted, "the drill left its tmpfs mounted"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scenario", "engine"),
    [pair for pair in scenario_pairs() if pair[0] in ("process-hang", "disk-full", "memory-pressure")],
)
def test_host_fault_drills_on_every_engine(
    tmp_path: Path, scenario: str, engine: str, request: pytest.FixtureRequest
) -> None:
    if scenario == "memory-pressure":
        request.getfixturevalue("host_memory")
    result = run_drill(scenario, engine, workdir=tmp_path)
    assert result.error is None, result.error
    assert result.passed, (result.health, result.rto_seconds, result.lost_writes, result.playbooks)
    assert result.rto_seconds is not None and result.rto_seconds <= SCENARIOS[scenario].target_rto_seconds
    assert result.lost_writes == 0 and result.rpo_seconds <= SCENARIOS[scenario].target_rpo_seconds
    if scenario == "memory-pressure":  # found by sampling RSS and stopped by the playbook, not the cleanup
        assert result.fault["hog_stopped_by_recovery"] is True, result.fault


def test_disk_full_drill_fails_honestly_when_nothing_of_ours_frees_enough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No WAL kept beyond what the store needs: recovery has nothing of its own to free, and the
    # foreign file is not its to delete. The drill must say so, not pass.
    monkeypatch.setattr(host, "DISK_DRILL_ENGINE", {"wal_segment_bytes": 256 * 1024, "wal_keep_segments": 0})
    result = run_drill("disk-full", "lsm", writes_before_backup=120, writes_after_backup=80, workdir=tmp_path)
    assert result.error is None, result.error
    assert not result.passed and not result.recovered
    assert result.fault["outcome"] == "full" and result.fault["foreign_fill_intact"] is True
    assert result.health.startswith("still full after recovery"), result.health
    assert result.fault["filler"] in result.health
    assert all(run["status"] != "succeeded" for run in result.playbooks)
    assert any("manual intervention required: still full" in run["message"] for run in result.playbooks)
