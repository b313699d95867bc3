"""The house rule of DESIGN.md: console -> drills -> faults -> playbooks -> fleet -> engines, never the other way.

import-linter enforces it in `make test` too; this test also catches lazy imports inside
functions, which a static graph of module-level imports could miss.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FORBIDDEN = {
    "engines": ("textual", "console", "drills", "faults", "playbooks", "fleet"),
    "fleet": ("textual", "console", "drills", "faults", "playbooks"),
    "playbooks": ("textual", "console", "drills", "faults"),
    "faults": ("textual", "console", "drills"),
    "drills": ("textual", "console"),
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_lower_rooms_never_import_upper_rooms() -> None:
    offences = []
    checked = 0
    for room, forbidden in FORBIDDEN.items():
        for path in sorted((ROOT / room).rglob("*.py")):
            checked += 1
            for line, module in imported_modules(path):
                if module.split(".")[0] in forbidden:
                    offences.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert checked > 0
    assert offences == []


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from textual.app import App\n    return App\n", encoding="utf-8")
    assert imported_modules(sample) == [(2, "textual.app")]
