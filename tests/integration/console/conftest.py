"""The console's integration tests: helpers in ``console_testkit`` beside this file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Triage answers, runs and the audit log go to the test's directory, never the user's state dir."""
    state = tmp_path / "state"
    monkeypatch.setenv("DRCONSOLE_STATE_DIR", str(state))
    return state
