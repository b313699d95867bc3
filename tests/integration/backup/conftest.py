"""Fixtures of the backup tests; the helpers themselves live in ``backup_support``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from backup_support import BACKENDS, backend_present  # noqa: E402
from sshd_support import SshServer, start_sshd  # noqa: E402


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Every backend whose engines/<name>/engine.py exists; the others are skipped."""
    if not backend_present(request.param):
        pytest.skip(f"engines/{request.param}/engine.py does not exist yet")
    return str(request.param)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 256 KiB tmpfs: a real ENOSPC (skipped where mounting is not permitted)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """A real OpenSSH server on loopback for one test module (its own config, keys and client home)."""
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ssh_home(sshd: SshServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process's ``~`` is the test client's home (its .ssh/config, key and known_hosts)."""
    monkeypatch.setenv("HOME", str(sshd.home))
    return sshd.home
