"""The host-loss drill on real network namespaces and a real sshd: the primary's host is lost whole
(node killed, cable pulled, data dir and local repository taken away), and a new node on another
namespace host is rebuilt from the off-site SFTP copy alone, within the scenario's RTO and with the
lost writes bounded by the archive timeout. lsm runs in ``make test``; cow and rocksdb in ``make test-all``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sshd_support import ensure_installed

from drills import SCENARIOS, run_drill
from drills.host_loss import ARCHIVE_TIMEOUT
from drills.netlab import NetnsUnavailable, PartitionLab


def _lab_or_skip() -> None:
    try:
        with PartitionLab.create(["probe"]):
            pass
    except NetnsUnavailable as exc:
        pytest.skip(f"network namespaces are refused here: {exc}")


@pytest.mark.parametrize(
    "engine", ["lsm", pytest.param("cow", marks=pytest.mark.slow), pytest.param("rocksdb", marks=pytest.mark.slow)]
)
def test_a_lost_host_is_rebuilt_on_another_host_from_the_off_site_copy(tmp_path: Path, engine: str) -> None:
    _lab_or_skip()
    ensure_installed()
    scenario = SCENARIOS["host-loss"]
    result = run_drill("host-loss", engine, workdir=tmp_path, keep=True)
    try:
        assert result.error is None, result.error
        assert result.recovered and result.passed, (result.health, result.playbooks)
        # targets: RTO within the scenario's, RPO bounded by the archive timeout (plus sealing and shipping)
        assert result.rto_seconds is not None and result.rto_seconds <= scenario.target_rto_seconds
        assert result.rpo_seconds <= scenario.target_rpo_seconds
        assert ARCHIVE_TIMEOUT < scenario.target_rpo_seconds <= ARCHIVE_TIMEOUT + 5
        assert result.acked_writes >= 500 and result.lost_writes < result.acked_writes // 2
        sandbox = Path(str(result.sandbox))
        # the old host is really gone: no data dir, no local repository where they were; kept aside
        assert not (sandbox / "old-host" / "data").exists() and not (sandbox / "old-host" / "backup").exists()
        lost = Path(result.fault["lost_disks"])
        assert (lost / "0-data" / "drconsole.json").exists() and (lost / "1-backup" / "drconsole-backup.json").exists()
        # the new node ran on the new host's namespace, rebuilt from the sftp copy to the end of its WAL
        new_node = result.fault["new_node"]
        assert new_node["netns"] == new_node["host_netns"] and new_node["pid"]
        assert new_node["archive"] == result.fault["offsite"]  # it goes on archiving off-site
        assert result.fault["offsite"].startswith("sftp://")
        (run,) = result.playbooks
        assert run["playbook"] == "host-loss" and run["status"] == "succeeded", run
        restore = next(step for step in run["steps"] if step["step"] == "restore")
        assert "replayed" in restore["summary"], restore  # the archived WAL after the backup came back too
        assert list((sandbox / "offsite-host" / "repo" / "wal-archive").glob("*.wal"))
    finally:
        shutil.rmtree(str(result.sandbox), ignore_errors=True)
