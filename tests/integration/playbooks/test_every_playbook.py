"""Every playbook runs for real against each backend it declares, on a healthy data dir with a backup.

On a healthy dir the recovery steps find nothing to do (their conditions are false) and the run
must still succeed and leave the data verifying clean with every key. The matrix is slow; one
backend runs in `make test`, all three in `make test-all`.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playbook_support import fill

from engines import open_engine
from engines.backup import create_backup, iso_utc
from playbooks.evidence import disk_usage
from playbooks.loader import Library
from playbooks.runner import Runner, RunOptions

PLAYBOOKS = sorted(Library.load().playbooks)
BACKENDS = ["rocksdb", pytest.param("lsm", marks=pytest.mark.slow), pytest.param("cow", marks=pytest.mark.slow)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_playbook_runs_for_real(tmp_path: Path, backend: str) -> None:
    library = Library.load()
    failures = []
    for playbook_id in PLAYBOOKS:
        playbook = library.playbooks[playbook_id]
        if backend not in playbook.backends:
            continue
        data = fill(tmp_path / playbook_id / "db", backend, count=300)
        repo = tmp_path / playbook_id / "repo"
        time.sleep(0.01)
        before_backup = iso_utc(time.time_ns())  # inside the window: the backup saw the log end here
        create_backup(repo, data_dir=data)
        params = {}
        if "repo" in playbook.params:
            params["repo"] = str(repo)
        if "until" in playbook.params and playbook.params["until"].required:
            params["until"] = before_backup
        result = Runner(library).run(playbook_id, data, RunOptions(assume_yes=True, params=params))
        if playbook_id == "disk-space" and disk_usage(data).ratio > 0.85:
            assert result.status == "failed"  # this machine's disk really is above the threshold
            continue
        if result.status != "succeeded":
            failures.append((playbook_id, [(step.id, step.status, step.summary) for step in result.steps]))
            continue
        with open_engine(data, mode="ro") as engine:
            assert engine.verify().ok, playbook_id
            assert sum(1 for _ in engine.scan()) == 301, playbook_id
    assert failures == []
