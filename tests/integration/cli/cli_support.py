"""Shared helpers of the CLI tests: run ``main`` in-process or the real console script, hash a tree.

Test modules import them with ``from cli_support import ...`` (pytest puts this folder on sys.path)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from support import CliResult, run_cli_in_process

from console.cli.main import main

BACKENDS = ("cow", "lsm", "rocksdb")
DRCONSOLE = Path(sys.executable).with_name("drconsole")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def any_backend() -> str:
    """One backend, for tests that are about the CLI rather than a backend."""
    return "lsm"


Result = CliResult


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> Result:
    """Run ``drconsole ARGS`` in-process."""
    return run_cli_in_process(capsys, main, *args)


def run(*args: str | Path, timeout: float = 60, cwd: Path | None = None) -> Result:
    """Run the real ``drconsole`` console script."""
    done = subprocess.run([str(DRCONSOLE), *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd)
    return Result(done.returncode, done.stdout, done.stderr)


def assert_error(result: Result, code: int, *, contains: str | None = None) -> str:
    """The documented failure: that exit code, one line on stderr, no traceback. Returns the line."""
    assert result.code == code, f"exit {result.code}, wanted {code}: {result.err!r}"
    assert "Traceback" not in result.err + result.out
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {result.err!r}"
    assert lines[0].startswith("drconsole: ")
    if contains is not None:
        assert contains in lines[0], lines[0]
    return lines[0]


def tree_hash(path: Path) -> str:
    """A digest of every name, type, mode and content under ``path`` (or that it is absent)."""
    digest = hashlib.sha256()
    if not os.path.lexists(path):
        return "absent"
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(dirs + files):
            full = os.path.join(root, name)
            info = os.lstat(full)
            digest.update(f"{os.path.relpath(full, path)}|{stat.S_IFMT(info.st_mode)}|{info.st_mode:o}|".encode())
            if stat.S_ISREG(info.st_mode):
                with open(full, "rb") as handle:
                    digest.update(hashlib.sha256(handle.read()).digest())
    if os.path.isfile(path):
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def make_data_dir(path: Path, backend: str, rows: int = 20) -> Path:
    """A closed data dir holding key000..key{rows-1} -> "value N ✓" (close flushes the store)."""
    from engines import create_engine

    with create_engine(path, backend=backend) as engine:
        if rows:
            engine.write_batch([(f"key{i:03d}".encode(), f"value {i} ✓".encode()) for i in range(rows)])
    return path


def write_without_close(path: Path, rows: dict[str, str]) -> None:
    """Write ``rows`` in a child process that then dies without closing: the WAL holds them."""
    code = (
        "import os, sys, json\n"
        "from engines import open_engine\n"
        "engine = open_engine(sys.argv[1], mode='rw')\n"
        "for key, value in json.loads(sys.argv[2]).items():\n"
        "    engine.put(key.encode(), value.encode())\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path), json.dumps(rows)], check=True, timeout=60)


def wal_segments(path: Path) -> list[Path]:
    return sorted((path / "wal").glob("*.wal"))
