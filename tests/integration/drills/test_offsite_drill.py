"""The ransomware-offsite drill: the data dir and the local repository are encrypted; the autopilot
restores from the off-site copy alone, with no acknowledged write lost (the WAL went there too)."""

from __future__ import annotations

import shutil
from pathlib import Path

from drills import SCENARIOS, run_drill


def test_ransomware_on_the_host_is_undone_from_the_off_site_copy(tmp_path: Path) -> None:
    result = run_drill("ransomware-offsite", "lsm", workdir=tmp_path, keep=True)
    try:
        assert result.error is None, result.error
        assert result.passed and result.recovered and result.lost_writes == 0, (result.health, result.playbooks)
        assert (
            result.rto_seconds is not None and result.rto_seconds <= SCENARIOS["ransomware-offsite"].target_rto_seconds
        )
        sandbox = Path(str(result.sandbox))
        local = [path for path in (sandbox / "backup").rglob("*") if path.is_file()]
        assert local and all(path.name.endswith(".locked") or path.name == "README_RESTORE.txt" for path in local)
        assert list((sandbox / "offsite").glob("*/backup_*/*.tar.zst"))
        assert [run["playbook"] for run in result.playbooks] == ["ransomware"]
    finally:
        shutil.rmtree(str(result.sandbox), ignore_errors=True)
