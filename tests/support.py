"""Test support shared by every suite: which backends exist, crash-consistent copies."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

ALL_BACKENDS = ("cow", "lsm", "rocksdb")
SLOW = os.environ.get("DRCONSOLE_SLOW") == "1"


def available_backends() -> list[str]:
    """Backends whose module is present in this checkout (all three once they have landed)."""
    return [name for name in ALL_BACKENDS if importlib.util.find_spec(f"engines.{name}.engine") is not None]


def backend_params() -> list:
    present = set(available_backends())
    return [pytest.param(name, marks=() if name in present else pytest.mark.skip(reason=f"{name} backend not built yet"))
            for name in ALL_BACKENDS]


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
