"""The wheel, installed into a clean venv the way a user would (pip, pyproject's ranges, the lock as
constraints), runs; and the two lock files agree with each other."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^ \\;]+)", re.MULTILINE)


def _pins(path: Path) -> dict[str, str]:
    return {name.lower().replace("_", "-"): version for name, version in PIN.findall(path.read_text())}


def _run(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(arg) for arg in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert done.returncode == 0, f"{args}: {done.stderr[-2000:]}"
    return done


def test_the_runtime_lock_is_the_test_lock_minus_the_test_tools() -> None:
    runtime, full = _pins(ROOT / "requirements" / "runtime.txt"), _pins(ROOT / "requirements" / "lock.txt")
    assert {"rocksdict", "textual", "asyncssh", "cryptography", "shtab"} <= set(runtime)
    assert {name: full.get(name) for name in runtime} == runtime
    assert {"pytest", "mypy", "pip", "setuptools"} <= set(full) - set(runtime)


def test_the_wheel_installs_into_a_clean_venv_from_the_lock(tmp_path: Path) -> None:
    wheels, source = tmp_path / "dist", tmp_path / "source"
    # Built from a copy: setuptools writes build/ into the tree it builds, and the checkout stays clean.
    shutil.copytree(
        ROOT, source, ignore=shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__", "tests", "bench")
    )
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", wheels, source)
    (wheel,) = wheels.glob("drconsole-*.whl")
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(
        "".join(f"{name}=={version}\n" for name, version in _pins(ROOT / "requirements" / "runtime.txt").items())
    )
    venv = tmp_path / "venv"
    _run(getattr(sys, "_base_executable", sys.executable), "-m", "venv", venv)
    _run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--constraint", constraints, wheel)
    _run(venv / "bin" / "python", "-m", "pip", "check")
    installed = {
        entry["name"].lower().replace("_", "-"): entry["version"]
        for entry in json.loads(_run(venv / "bin" / "python", "-m", "pip", "list", "--format", "json").stdout)
    }
    runtime = _pins(ROOT / "requirements" / "runtime.txt")
    assert {name: installed.get(name) for name in runtime} == runtime  # exactly the locked set
    drconsole = venv / "bin" / "drconsole"
    assert _run(drconsole, "--version").stdout.startswith("drconsole ")
    data = tmp_path / "data"
    _run(drconsole, "engine", "init", "--engine", "lsm", "--data-dir", data)
    _run(drconsole, "engine", "put", "--data-dir", data, "k", "v")
    assert _run(drconsole, "engine", "get", "--data-dir", data, "k").stdout == "v\n"
    # The package data (the playbook library, themes) came along in the wheel.
    playbooks = json.loads(_run(drconsole, "playbook", "list", "--json").stdout)["playbooks"]
    assert {"data-recovery", "restore", "failover"} <= {playbook["id"] for playbook in playbooks}
    assert "complete -o bashdefault -F _shtab_drconsole drconsole" in _run(drconsole, "completion", "bash").stdout
