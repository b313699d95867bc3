"""Every playbook test gets its own state dir (journals, audit log, incidents)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "state"
    monkeypatch.setenv("DRCONSOLE_STATE_DIR", str(folder))
    monkeypatch.delenv("DRCONSOLE_PLAYBOOK_PATH", raising=False)
    monkeypatch.delenv("DRCONSOLE_WEBHOOK_URL", raising=False)
    return folder
