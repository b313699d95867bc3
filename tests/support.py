"""Test support shared by every suite: the backends, crash-consistent copies."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ALL_BACKENDS = ("cow", "lsm", "rocksdb")
SLOW = os.environ.get("DRCONSOLE_SLOW") == "1"


def available_backends() -> list[str]:
    """The three backends. A checkout without one is broken: its tests fail on the import, none is skipped."""
    return list(ALL_BACKENDS)


def backend_params() -> list[str]:
    return list(ALL_BACKENDS)


def crash_copy(source: Path, dest: Path) -> Path:
    """Copy a data dir as a killed process would leave it: only bytes the OS already has.

    The engine stays open; its user-space buffers are not in the copy, exactly as after SIGKILL.
    """

    def ignore(_dir: str, names: list[str]) -> list[str]:
        return [name for name in names if name in ("LOCK", "drconsole.lock")]

    def copy_if_present(src: str, dst: str) -> None:
        try:
            shutil.copy2(src, dst)
        except FileNotFoundError:
            pass  # retired by background work while we copied: a killed process would not see it either

    shutil.copytree(source, dest, ignore=ignore, symlinks=True, copy_function=copy_if_present)
    return dest


@dataclass
class CliResult:
    """What ``drconsole ARGS`` did: exit code, stdout, stderr."""

    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        """stdout parsed as exactly one JSON object (the CLI contract for --json)."""
        lines = [line for line in self.out.splitlines() if line.strip()]
        assert len(lines) == 1, f"expected one JSON line on stdout, got {self.out!r}"
        value = json.loads(lines[0])
        assert isinstance(value, dict)
        return value


def run_cli_in_process(
    capsys: pytest.CaptureFixture[str], main: Callable[[list[str]], int], *args: str | Path
) -> CliResult:
    """Run a CLI ``main`` in this process and capture what it printed; never a traceback."""
    capsys.readouterr()
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    assert "Traceback (most recent call last)" not in captured.err + captured.out
    return CliResult(code, captured.out, captured.err)
