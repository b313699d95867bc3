"""Host faults for real: ENOSPC from a real (tmpfs) filesystem, a hog's real resident memory, a real
SIGSTOP; and the drills that recover from them through the autopilot."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from drills import SCENARIOS, run_drill, scenario_pairs
from engines import create_engine, open_engine
from engines.errors import DiskFullError
from faults import FaultError, inject
from faults.local import FILLER_NAME, MountRefused, sandbox_tmpfs
from playbooks.runner import Runner, RunOptions


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    try:
        with sandbox_tmpfs(tmp_path / "volume", 16) as volume:
            yield volume
    except MountRefused as exc:
        pytest.skip(f"mounting a tmpfs is not permitted here ({exc}): no real ENOSPC to test")


def test_a_full_disk_refuses_writes_with_disk_full_and_loses_no_acknowledged_one(
    small_volume: Path, tmp_path: Path
) -> None:
    data = small_volume / "data"
    acked = {}
    with create_engine(data, backend="lsm", durability="sync") as engine:
        for number in range(300):
            engine.put(b"k%05d" % number, b"v%05d" % number)
            acked[b"k%05d" % number] = b"v%05d" % number
    runaway = small_volume / "app-debug.log"  # not ours: named by the playbook, never touched
    runaway.write_bytes(b"x" * 2**18)
    report = inject("disk-full", data)
    filler = Path(report.extra["filler"])
    assert filler.name == FILLER_NAME and ".quarantine" in filler.parts and filler.stat().st_size > 15 * 2**20
    assert shutil.disk_usage(small_volume).free < 64 * 1024
    engine = open_engine(data, mode="rw")
    with pytest.raises(DiskFullError, match="no space left"):
        for number in range(300, 5000):
            engine.put(b"k%05d" % number, b"v%05d" % number)
            acked[b"k%05d" % number] = b"v%05d" % number
    with pytest.raises(DiskFullError):
        engine.close()
    # Without a quarantine volume the playbook frees what it can, says what quarantine holds, and fails.
    stuck = Runner().run("disk-space", data, RunOptions(assume_yes=True))
    assert stuck.status == "failed"
    breakdown = next(step for step in stuck.steps if step.id == "breakdown")
    assert "quarantine holds" in breakdown.summary and "frees no space here" in breakdown.summary
    foreign = next(step for step in stuck.steps if step.id == "foreign")
    assert f"{runaway} (" in foreign.summary, foreign.summary
    volume = tmp_path / "quarantine-volume"
    volume.mkdir()
    freed = Runner().run(
        "disk-space",
        data,
        RunOptions(
            assume_yes=True,
            params={"quarantine_volume": str(volume)},
            waive_safety_copy="no room for a safety copy: disk full",
        ),
    )
    assert freed.status == "succeeded", freed.to_json()
    moved = list(volume.rglob(FILLER_NAME))
    assert len(moved) == 1 and moved[0].stat().st_size == report.extra["filled_bytes"]  # moved, not deleted
    assert runaway.stat().st_size == 2**18  # reported, never deleted
    with open_engine(data, mode="rw") as engine:
        assert all(engine.get(key) == value for key, value in acked.items())
        engine.put(b"after", b"space")


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
    assert used == [
        {"process-hang": "process-hang", "disk-full": "disk-space", "memory-pressure": "memory-recovery"}[scenario]
    ]
    if scenario == "process-hang":
        assert result.fault["changes"][0]["detail"] == "SIGSTOP"
        assert result.fault["acked_during_recovery"] >= 20  # the load kept writing through the node's API
        assert result.rto_seconds is not None and result.rto_seconds <= SCENARIOS[scenario].target_rto_seconds
    if scenario == "disk-full":
        under = result.fault["under_fault"]
        assert under["error"].startswith("DiskFullError"), under
        assert "tmpfs" in result.fault["method"]
    assert not list(tmp_path.glob("drill-*")), "the sandbox was not removed"
    mounted = subprocess.run(["mount"], capture_output=True, text=True, check=False).stdout
    assert str(tmp_path) not in mounted, "the drill left its tmpfs mounted"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scenario", "engine"),
    [pair for pair in scenario_pairs() if pair[0] in ("process-hang", "disk-full", "memory-pressure")],
)
def test_host_fault_drills_on_every_engine(tmp_path: Path, scenario: str, engine: str) -> None:
    result = run_drill(scenario, engine, workdir=tmp_path)
    assert result.error is None, result.error
    assert result.passed, (result.health, result.rto_seconds, result.lost_writes, result.playbooks)
    assert result.rto_seconds is not None and result.rto_seconds <= SCENARIOS[scenario].target_rto_seconds
    assert result.lost_writes == 0 and result.rpo_seconds <= SCENARIOS[scenario].target_rpo_seconds
    if scenario == "memory-pressure":  # found by sampling RSS and stopped by the playbook, not the cleanup
        assert result.fault["hog_stopped_by_recovery"] is True, result.fault
