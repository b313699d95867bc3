"""One definition per concept: a public class name is defined in one module of the project.

Two classes of one name (an ``Incident`` in the console and another in the playbooks, a
``ReadOnlyRefusal`` on two bases) are two models of one thing that drift apart; this lists every
public module-level class of each package and fails on a second definition. A name that really
means two things lives in ``ALLOWED`` with the reason, and the pair must still exist there.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("engines", "fleet", "playbooks", "faults", "drills", "console", "themes")

# name -> (the modules that define it, why it is not one concept)
ALLOWED: dict[str, tuple[frozenset[str], str]] = {
    "Leaf": (
        frozenset({"engines/cow/node.py", "playbooks/tree.py"}),
        "a B+ tree leaf page and a decision tree's conclusion; neither package imports the other's",
    ),
    "Member": (
        frozenset({"engines/backup/pack.py", "playbooks/actions/node_cluster.py"}),
        "a tar archive's member (tarfile's word) and a cluster's member node",
    ),
}

# The concepts issue 22 found twice; each must stay defined exactly once.
ONE_EACH = (
    "Incident",
    "RunEvent",
    "DecisionTree",
    "ReadOnlyRefusal",
    "EngineError",
    "DrconsoleError",
    "Runner",
    "Run",
    "RunOptions",
    "RunResult",
    "StepOutcome",
)


def public_classes(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, list[str]]:
    """Public module-level class name -> the modules (paths relative to ``root``) that define it."""
    found: dict[str, list[str]] = defaultdict(list)
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in tree.body:
                if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                    found[node.name].append(path.relative_to(root).as_posix())
    return dict(found)


def duplicates(classes: dict[str, list[str]]) -> list[str]:
    offences = []
    for name, modules in sorted(classes.items()):
        if len(modules) < 2:
            continue
        allowed = ALLOWED.get(name)
        if allowed is not None and frozenset(modules) == allowed[0]:
            continue
        offences.append(f"{name} is defined in {', '.join(modules)}")
    return offences


def test_every_public_class_name_is_defined_once() -> None:
    classes = public_classes()
    assert len(classes) > 200  # the packages were read
    assert duplicates(classes) == []


def test_the_named_concepts_have_one_definition_each() -> None:
    classes = public_classes()
    for name in ONE_EACH:
        assert len(classes.get(name, [])) == 1, f"{name}: {classes.get(name)}"


def test_the_allow_list_names_pairs_that_exist() -> None:
    # An entry whose pair is gone (renamed, merged) must go too, or it would excuse the next duplicate.
    classes = public_classes()
    for name, (modules, reason) in ALLOWED.items():
        assert reason
        assert frozenset(classes.get(name, [])) == modules, name


def test_a_second_definition_is_caught(tmp_path: Path) -> None:
    for package, body in (
        ("engines", "class Incident:\n    pass\n"),
        ("console", "class Incident(Exception):\n    pass\n"),
        ("playbooks", "class _Private:\n    pass\n"),
    ):
        (tmp_path / package).mkdir()
        (tmp_path / package / "model.py").write_text(body, encoding="utf-8")
    classes = public_classes(tmp_path, ("engines", "console", "playbooks"))
    assert "_Private" not in classes
    assert duplicates(classes) == ["Incident is defined in engines/model.py, console/model.py"]
