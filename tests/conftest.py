"""Shared fixtures (helpers live in support.py, importable as ``support``)."""

from __future__ import annotations

import fcntl
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import backend_params, crash_copy

HOST_MEMORY_LOCK = Path(tempfile.gettempdir()) / "drconsole-tests-host-memory.lock"
HOST_MEMORY_WAIT_SECONDS = 900.0  # the longest holder, a slow memory drill, takes ~1 min


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


@pytest.fixture
def host_memory() -> Iterator[None]:
    """Held by a test that puts a memory hog on this host and has it found by sampling the host.

    Two such tests at once (the two xdist workers) each see the other's hog: a probe once named
    another test's growing process as the culprit. A file lock, so that it holds across workers
    and across test runs.
    """
    with open(HOST_MEMORY_LOCK, "a") as handle:
        deadline = time.monotonic() + HOST_MEMORY_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, f"{HOST_MEMORY_LOCK} was held for {HOST_MEMORY_WAIT_SECONDS:.0f} s"
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
