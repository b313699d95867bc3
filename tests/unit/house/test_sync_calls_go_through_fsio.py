"""Every sync, rename and replace of the engines goes through engines.fsio (issue 19).

The power-cut tests see only what goes through that layer: an ``os.fsync`` or ``os.rename``
called directly would be invisible to them, and its removal would go unnoticed.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FORBIDDEN = {
    "os": {"fsync", "fdatasync", "replace", "rename", "pwritev", "RWF_DSYNC", "sync_file_range"},
    "shutil": {"move"},
}


def direct_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.attr in FORBIDDEN.get(node.value.id, ()):
                found.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module in FORBIDDEN:
            found += [
                f"{path.name}:{node.lineno}: from {node.module} import {alias.name}"
                for alias in node.names
                if alias.name in FORBIDDEN[node.module]
            ]
    return found


def test_engines_sync_and_rename_only_through_fsio() -> None:
    offences = []
    for path in sorted((ROOT / "engines").rglob("*.py")):
        if path.relative_to(ROOT).as_posix() != "engines/fsio.py":
            offences += direct_calls(path)
    assert offences == []


def test_the_checker_sees_direct_calls(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""os.fsync in a docstring is fine."""\nimport os\nfrom shutil import move\n\n'
        "def f(fd):\n    os.fsync(fd)\n    os.rename('a', 'b')\n",
        encoding="utf-8",
    )
    assert [line.split(": ")[1] for line in direct_calls(sample)] == [
        "from shutil import move",
        "os.fsync",
        "os.rename",
    ]
