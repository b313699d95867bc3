"""Snapshot tests of the console (pytest-textual-snapshot); helpers from ``console_testkit``.

Update the SVGs after an intended change with ``pytest tests/snapshots --snapshot-update`` and
review them (``snapshot_report.html`` shows the differences when a test fails).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "console"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # snapshot_grid


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The triage screen records answers in the playbooks' state dir: the test's own, never the user's."""
    state = tmp_path / "state"
    monkeypatch.setenv("DRCONSOLE_STATE_DIR", str(state))
    return state
