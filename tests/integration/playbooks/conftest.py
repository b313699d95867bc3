"""Fixtures of the playbook integration tests; helpers live in ``playbook_support``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "state"
    monkeypatch.setenv("DRCONSOLE_STATE_DIR", str(folder))
    monkeypatch.delenv("DRCONSOLE_PLAYBOOK_PATH", raising=False)
    monkeypatch.delenv("DRCONSOLE_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("DRCONSOLE_ESCALATION_FILE", raising=False)
    return folder
