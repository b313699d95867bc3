"""Loading the playbook library and the decision tree from TOML, with errors that say where.

Every problem is a ``PlaybookFileError`` naming the file, the line and the field: TOML syntax
(from ``tomllib``), a model error (from pydantic, located in the text by ``toml_locate``), and the
checks that need more than one file: the action exists and takes those arguments, a ``verify``
action only reads, ``when`` parses, placeholders name a run variable or a parameter, an include
names a playbook for each backend, the tree has no dangling branch or cycle, its probes exist and
each leaf's playbooks exist (or are listed as pending).

The library is ``playbooks/library/`` plus the folders in ``$DRCONSOLE_PLAYBOOK_PATH``
(``os.pathsep``-separated), where a site keeps its own playbooks.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from playbooks.actions import REGISTRY
from playbooks.conditions import parse_condition
from playbooks.errors import PlaybookFileError, PlaybookNotAvailableError, UnknownPlaybookError
from playbooks.models import Playbook
from playbooks.probes import PROBES
from playbooks.templating import RUN_VARIABLES, placeholders
from playbooks.toml_locate import format_field, locate
from playbooks.tree import DecisionTree, Leaf

__all__ = ["Library", "load_playbook_file", "load_tree_file", "library_dirs", "LIBRARY_DIR", "TREE_FILE"]

LIBRARY_DIR = Path(__file__).parent / "library"
TREE_FILE = "tree.toml"
_TYPE_TAGS = re.compile(r"^(str|int|bool|Leaf|list\[.*\]|function-.*|literal\[.*\]|dict\[.*\])$")


def library_dirs() -> list[Path]:
    dirs = [LIBRARY_DIR]
    for entry in os.environ.get("DRCONSOLE_PLAYBOOK_PATH", "").split(os.pathsep):
        if entry.strip():
            dirs.append(Path(entry.strip()))
    return dirs


@dataclass
class _Source:
    path: Path
    text: str

    def fail(self, location: Sequence[str | int], problem: str) -> PlaybookFileError:
        clean = [part for part in location if not (isinstance(part, str) and _TYPE_TAGS.match(part))]
        return PlaybookFileError(str(self.path), locate(self.text, clean), format_field(clean) or None, problem)


def _read(path: Path) -> tuple[_Source, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PlaybookFileError(str(path), None, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise PlaybookFileError(str(path), None, None, f"cannot read it: {exc.strerror or exc}") from exc
    source = _Source(path, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line = int(match.group(1)) if match else None
        problem = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise PlaybookFileError(str(path), line, None, f"TOML syntax: {problem}") from exc
    return source, data


def _validate(source: _Source, model: type[BaseModel], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # A branch is a node id or an inline leaf: a bad leaf fails both, and the leaf's error says why.
        leaf_errors = [error for error in errors if any("Leaf" in str(part) for part in error["loc"])]
        error = leaf_errors[0] if leaf_errors else errors[0]
        problem = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            problem = "unknown field (a typo?)"
        elif error["type"] == "missing":
            problem = "required field is missing"
        elif "input" in error and error["type"] not in ("missing",) and not isinstance(error["input"], dict):
            problem += f" (got {error['input']!r})"
        raise source.fail(error["loc"], problem) from None


def load_playbook_file(path: Path) -> Playbook:
    """One playbook file, checked on its own (includes are checked by ``Library``)."""
    path = Path(path)
    source, data = _read(path)
    playbook: Playbook = _validate(source, Playbook, data)
    if playbook.id != path.stem:
        raise source.fail(["id"], f"the id {playbook.id!r} must match the file name {path.stem!r}")
    for param in playbook.params:
        if param in RUN_VARIABLES:
            raise source.fail(["params", param], f"{param!r} is a run variable; choose another parameter name")
    known = set(RUN_VARIABLES) | set(playbook.params)
    for index, step in enumerate(playbook.steps):
        where: list[str | int] = ["steps", index]
        checked: tuple[tuple[str, str | None, dict[str, Any]], ...] = (
            ("action", step.action, step.args),
            ("verify", step.verify, step.verify_args),
            ("rollback", step.rollback, step.rollback_args),
        )
        for field_name, name, args in checked:
            if name is None:
                if args and field_name != "action":
                    raise source.fail([*where, f"{field_name}_args"], f"arguments given but no {field_name} action")
                continue
            if name not in REGISTRY:
                close = difflib.get_close_matches(name, [entry.name for entry in REGISTRY], n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise source.fail([*where, field_name], f"unknown action {name!r}{hint}")
            entry = REGISTRY.get(name)
            if field_name == "verify" and entry.writes:
                raise source.fail([*where, "verify"], f"{name} changes things; a verification must only read")
            problems = entry.check_arguments(args)
            if problems:
                arg_field = "args" if field_name == "action" else f"{field_name}_args"
                raise source.fail([*where, arg_field], problems[0])
        if step.include is not None and step.args:
            raise source.fail([*where, "args"], "an include takes no arguments; parameters pass through")
        if step.when is not None:
            try:
                condition = parse_condition(step.when)
            except ValueError as exc:
                raise source.fail([*where, "when"], str(exc)) from None
            for reference in condition.references():
                if reference[0] == "params" and len(reference) > 1 and reference[1] not in playbook.params:
                    raise source.fail([*where, "when"], f"no parameter {reference[1]!r} in this playbook")
        for placeholder in placeholders(step.args) + placeholders(step.verify_args) + placeholders(step.rollback_args):
            if placeholder not in known:
                raise source.fail(
                    [*where, "args"],
                    f"unknown placeholder {{{placeholder}}}: use a run variable "
                    f"({', '.join(RUN_VARIABLES)}) or a parameter",
                )
    return playbook


def load_tree_file(path: Path) -> tuple[DecisionTree, _Source]:
    source, data = _read(Path(path))
    tree: DecisionTree = _validate(source, DecisionTree, data)
    if tree.root not in tree.nodes:
        raise source.fail(["root"], f"the root {tree.root!r} is not a node")
    for node_id, node in tree.nodes.items():
        if node.probe not in PROBES:
            close = difflib.get_close_matches(node.probe, sorted(PROBES), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise source.fail(["nodes", node_id, "probe"], f"unknown probe {node.probe!r}{hint}")
        for branch_name in ("yes", "no"):
            branch = getattr(node, branch_name)
            if isinstance(branch, str) and branch not in tree.nodes and branch not in tree.leaves:
                raise source.fail(["nodes", node_id, branch_name], f"{branch!r} names no node and no leaf")
    _check_shape(tree, source)
    return tree, source


def _check_shape(tree: DecisionTree, source: _Source) -> None:
    """No cycles; every node reachable from the root."""
    reached: set[str] = set()
    path: list[str] = []

    def walk(node_id: str) -> None:
        if node_id in path:
            cycle = " -> ".join([*path[path.index(node_id) :], node_id])
            raise source.fail(["nodes", node_id], f"the tree has a cycle: {cycle}")
        if node_id in reached:
            return
        path.append(node_id)
        node = tree.nodes[node_id]
        for branch in (node.yes, node.no):
            if isinstance(branch, str) and branch in tree.nodes:
                walk(branch)
        path.pop()
        reached.add(node_id)

    walk(tree.root)
    for node_id in tree.nodes:
        if node_id not in reached:
            raise source.fail(["nodes", node_id], f"node {node_id!r} cannot be reached from the root {tree.root!r}")


def _leaves(tree: DecisionTree) -> list[tuple[list[str | int], Leaf]]:
    found: list[tuple[list[str | int], Leaf]] = [(["leaves", name], leaf) for name, leaf in tree.leaves.items()]
    for node_id, node in tree.nodes.items():
        for branch_name in ("yes", "no"):
            branch = getattr(node, branch_name)
            if isinstance(branch, Leaf):
                found.append((["nodes", node_id, branch_name], branch))
    return found


@dataclass
class Library:
    playbooks: dict[str, Playbook] = field(default_factory=dict)
    sources: dict[str, Path] = field(default_factory=dict)
    tree: DecisionTree | None = None
    tree_path: Path | None = None

    @classmethod
    def load(cls, dirs: Sequence[Path] | None = None) -> Library:
        library = cls()
        tree_source = None
        for directory in list(dirs) if dirs is not None else library_dirs():
            directory = Path(directory)
            if not directory.is_dir():
                raise PlaybookFileError(str(directory), None, None, "playbook folder does not exist")
            for path in sorted(directory.glob("*.toml")):
                if path.name == TREE_FILE:
                    if library.tree is None:
                        library.tree, tree_source = load_tree_file(path)
                        library.tree_path = path
                    continue
                playbook = load_playbook_file(path)
                if playbook.id in library.playbooks:
                    raise PlaybookFileError(
                        str(path),
                        locate(path.read_text(encoding="utf-8"), ["id"]),
                        "id",
                        f"playbook {playbook.id!r} is already defined in {library.sources[playbook.id]}",
                    )
                library.playbooks[playbook.id] = playbook
                library.sources[playbook.id] = path
        library._check_includes()
        if library.tree is not None and tree_source is not None:
            library._check_leaves(tree_source)
        return library

    def _check_includes(self) -> None:
        for playbook in self.playbooks.values():
            text = self.sources[playbook.id].read_text(encoding="utf-8")
            source = _Source(self.sources[playbook.id], text)
            for index, step in enumerate(playbook.steps):
                if step.include is None:
                    continue
                for backend in playbook.backends:
                    target = step.include.replace("{backend}", backend)
                    if target == playbook.id:
                        raise source.fail(["steps", index, "include"], "a playbook cannot include itself")
                    included = self.playbooks.get(target)
                    if included is None:
                        raise source.fail(["steps", index, "include"], f"includes {target!r}, which does not exist")
                    if backend not in included.backends:
                        raise source.fail(
                            ["steps", index, "include"],
                            f"{target!r} does not apply to {backend}, which this playbook lists",
                        )
                    missing = sorted(set(included.params) - set(playbook.params))
                    if missing:
                        raise source.fail(
                            ["steps", index, "include"],
                            f"{target!r} takes the parameter {missing[0]!r}, which this playbook does "
                            f"not declare (parameters pass through to included steps)",
                        )
                    if any(inner.include for inner in included.steps):
                        raise source.fail(["steps", index, "include"], f"{target!r} includes others; one level only")

    def _check_leaves(self, source: _Source) -> None:
        assert self.tree is not None
        for location, leaf in _leaves(self.tree):
            for playbook_id in leaf.recommend:
                if playbook_id not in self.playbooks and playbook_id not in self.tree.pending:
                    raise source.fail(
                        [*location, "recommend"], f"recommends {playbook_id!r}, which is neither a playbook nor pending"
                    )

    def get(self, playbook_id: str) -> Playbook:
        if playbook_id in self.playbooks:
            return self.playbooks[playbook_id]
        if self.tree is not None and playbook_id in self.tree.pending:
            raise PlaybookNotAvailableError(
                f"playbook {playbook_id!r} is not available yet: {self.tree.pending[playbook_id]}",
                hint="see `drconsole playbook list` for what runs today",
            )
        close = difflib.get_close_matches(playbook_id, list(self.playbooks), n=3)
        raise UnknownPlaybookError(
            f"no playbook {playbook_id!r}",
            hint=(f"did you mean {', '.join(close)}? " if close else "") + "see `drconsole playbook list`",
        )

    def pending(self) -> dict[str, str]:
        if self.tree is None:
            return {}
        return {key: value for key, value in self.tree.pending.items() if key not in self.playbooks}
