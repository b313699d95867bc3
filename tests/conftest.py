"""Shared fixtures (helpers live in support.py, importable as ``support``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import backend_params, crash_copy


@pytest.fixture(autouse=True)
def private_audit(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's state dir, audit key and syslog socket are its own: never ~/.local/state, never /dev/log.

    Outside ``tmp_path``, so that a test hashing its ``tmp_path`` sees no audit entry of the command it ran.
    """
    root = tmp_path_factory.mktemp("audit")
    monkeypatch.setenv("DRCONSOLE_STATE_DIR", str(root / "state"))
    monkeypatch.setenv("DRCONSOLE_AUDIT_KEY", str(root / "keys" / "audit.key"))
    monkeypatch.setenv("DRCONSOLE_AUDIT_SYSLOG", str(root / "syslog.sock"))
    return root


@pytest.fixture(params=backend_params())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def crash() -> object:
    """``crash(source, dest)``: a crash-consistent copy of an open data dir (see crash_copy)."""
    return crash_copy
