"""Fixtures of the cluster tests: a real primary + standby (``drconsole node serve``) on loopback ports.

Every node process is stopped by the fixture's finalizer, also one a playbook started again (the
node is stopped by whoever holds its data dir's lock). The state dir (runs, audit log) is per test.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from cluster_support import Fleet  # noqa: E402


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "state"
    monkeypatch.setenv("DRCONSOLE_STATE_DIR", str(folder))
    monkeypatch.delenv("DRCONSOLE_WEBHOOK_URL", raising=False)
    return folder


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """A primary and its standby, lsm, each polling the other as a peer; stopped at the end."""
    started = Fleet(tmp_path / "fleet", "lsm")
    try:
        started.start()
        yield started
    finally:
        started.stop()
