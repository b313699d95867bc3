"""Every module imports on its own, first, in a fresh interpreter: no import cycle hides behind import order.

A cycle (probes -> faults -> actions -> probes) only shows when the module at its head is the
first one imported, which the test suite's own import order can mask.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("engines", "fleet", "playbooks", "faults", "drills", "console", "themes")
SKIP = {"console.__main__", "console.cli.__main__"}  # they run the CLI when imported


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join(parts)
            if name not in SKIP:
                names.append(name)
    return names


# Third-party packages are imported once by the driver, before it forks a child per module: each
# child then starts with none of our modules loaded, and the check costs a fork, not an interpreter.
_DRIVER = """
import os, sys
for heavy in ("textual.app", "textual.widgets", "rich", "httpx", "psutil", "pydantic", "zstandard",
              "prometheus_client", "starlette.applications", "uvicorn", "crc32c", "rocksdict", "asyncssh"):
    try:
        __import__(heavy)
    except ImportError:
        pass
failed = []
for name in sys.argv[1:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            __import__(name)
            os._exit(0)
        except BaseException as exc:
            os.write(write, f"{type(exc).__name__}: {exc}".encode()[:2000])
            os._exit(1)
    os.close(write)
    message = os.read(read, 4096).decode()
    os.close(read)
    _, status = os.waitpid(pid, 0)
    if status:
        failed.append(f"{name}: {message}")
print("\\n".join(failed))
"""


def _check(modules: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _DRIVER, *modules], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", result.stdout


def test_every_playbooks_module_imports_first() -> None:
    """playbooks, faults and drills are where the rooms meet (probes, actions, injectors): checked in the fast suite."""
    modules = [name for name in _modules() if name.split(".")[0] in ("playbooks", "faults", "drills")]
    assert len(modules) > 40, modules  # the walk found the room
    _check(modules)


@pytest.mark.slow
def test_every_module_imports_first() -> None:
    modules = _modules()
    assert len(modules) > 200, modules
    _check(modules)


def test_the_check_sees_a_cycle(tmp_path: Path) -> None:
    (tmp_path / "cyc").mkdir()
    (tmp_path / "cyc" / "__init__.py").write_text("")
    (tmp_path / "cyc" / "a.py").write_text("from cyc.b import B\nA = 1\n")
    (tmp_path / "cyc" / "b.py").write_text("from cyc.a import A\nB = 2\n")
    (tmp_path / "cyc" / "c.py").write_text("C = 3\n")
    result = subprocess.run(
        [sys.executable, "-c", _DRIVER, "cyc.c", "cyc.a"], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert result.stdout.strip().startswith("cyc.a: ImportError") and "circular import" in result.stdout
    assert "cyc.c" not in result.stdout
