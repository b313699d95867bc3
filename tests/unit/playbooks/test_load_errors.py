"""A bad playbook or tree file fails to load with the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from playbooks.errors import PlaybookFileError
from playbooks.loader import LIBRARY_DIR, Library, load_playbook_file, load_tree_file

GOOD = """id = "sample"
title = "A sample"
severity = "P1"
target_rto_seconds = 60
backends = ["rocksdb"]
guide = "test"

[params]
repo = { type = "path" }

[[steps]]
id = "check"
action = "engine.verify"

[[steps]]
id = "flush"
action = "engine.flush"
on_failure = "stop"
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def failure(path: Path) -> PlaybookFileError:
    with pytest.raises(PlaybookFileError) as caught:
        load_playbook_file(path)
    return caught.value


def test_the_good_sample_loads(tmp_path: Path) -> None:
    assert load_playbook_file(write(tmp_path, "sample.toml", GOOD)).steps[1].action == "engine.flush"


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "sample.toml", GOOD.replace('id = "flush"', 'id = "flush'))
    error = failure(path)
    assert error.file == str(path)
    assert error.line == 16
    assert "TOML syntax" in error.message
    assert f"{path}, line 16" in str(error)


def test_bad_value_names_the_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "sample.toml", GOOD.replace('on_failure = "stop"', 'on_failure = "explode"'))
    error = failure(path)
    assert (error.line, error.field) == (18, "steps[1].on_failure")
    assert "explode" in error.message
    assert error.exit_code == 2


def test_unknown_field_typo_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, "sample.toml", GOOD.replace('action = "engine.verify"', 'acton = "engine.verify"'))
    error = failure(path)
    assert error.field in ("steps[0].acton", "steps[0]")
    assert error.line in (12, 13)


def test_missing_required_field_points_at_the_file_top(tmp_path: Path) -> None:
    path = write(tmp_path, "sample.toml", GOOD.replace('severity = "P1"\n', ""))
    error = failure(path)
    assert error.field == "severity"
    assert error.line == 1
    assert "missing" in error.problem


def test_unknown_action_is_located_with_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "sample.toml", GOOD.replace('"engine.flush"', '"engine.flsh"'))
    error = failure(path)
    assert (error.line, error.field) == (17, "steps[1].action")
    assert "engine.flush" in error.problem


def test_unknown_argument_of_an_action(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sample.toml",
        GOOD.replace('action = "engine.flush"', 'action = "engine.flush"\nargs = { force = true }'),
    )
    error = failure(path)
    assert (error.line, error.field) == (18, "steps[1].args")
    assert "force" in error.problem


def test_bad_condition_and_unknown_placeholder(tmp_path: Path) -> None:
    path = write(tmp_path, "sample.toml", GOOD.replace('on_failure = "stop"', 'when = "steps.check.ok =="'))
    assert failure(path).field == "steps[1].when"
    path = write(
        tmp_path,
        "sample.toml",
        GOOD.replace('action = "engine.flush"', 'action = "engine.checkpoint"\nargs = { dest = "{nowhere}/x" }'),
    )
    error = failure(path)
    assert error.field == "steps[1].args" and "nowhere" in error.problem


def test_file_name_must_match_the_id(tmp_path: Path) -> None:
    error = failure(write(tmp_path, "other.toml", GOOD))
    assert (error.line, error.field) == (1, "id")


def test_a_bad_file_in_an_extra_library_folder_stops_the_library(tmp_path: Path) -> None:
    write(tmp_path, "sample.toml", GOOD.replace('severity = "P1"', 'severity = "P9"'))
    with pytest.raises(PlaybookFileError) as caught:
        Library.load([LIBRARY_DIR, tmp_path])
    assert caught.value.line == 3 and caught.value.field == "severity"


TREE = """root = "start"

[nodes.start]
question = "Can it start?"
probe = "node.opens"
yes = "monitor"
no = { fault = "files-missing", recommend = ["restore"] }

[leaves.monitor]
recommend = []
"""


def test_tree_dangling_branch_and_unknown_probe_are_located(tmp_path: Path) -> None:
    load_tree_file(write(tmp_path, "tree.toml", TREE))
    with pytest.raises(PlaybookFileError) as caught:
        load_tree_file(write(tmp_path, "tree.toml", TREE.replace('yes = "monitor"', 'yes = "nowhere"')))
    assert (caught.value.line, caught.value.field) == (6, "nodes.start.yes")
    with pytest.raises(PlaybookFileError) as caught:
        load_tree_file(write(tmp_path, "tree.toml", TREE.replace('"node.opens"', '"node.open"')))
    assert (caught.value.line, caught.value.field) == (5, "nodes.start.probe")


def test_a_leaf_takes_its_severity_from_its_fault_kind_only(tmp_path: Path) -> None:
    """One source for severity (playbooks/severity.py): a leaf that states its own is refused, located."""
    leaf = '{ fault = "files-missing", recommend = ["restore"] }'
    for bad, problem in (
        (leaf.replace(" }", ', severity = "P3" }'), "unknown field"),
        ('{ recommend = ["restore"] }', "names its fault kind"),
        (leaf.replace("files-missing", "files-gone"), "has no severity"),
    ):
        with pytest.raises(PlaybookFileError) as caught:
            load_tree_file(write(tmp_path, "tree.toml", TREE.replace(leaf, bad)))
        assert problem in caught.value.problem and caught.value.line == 7, caught.value


def test_tree_cycle_and_unreachable_node(tmp_path: Path) -> None:
    looped = (
        TREE.replace('yes = "monitor"', 'yes = "again"')
        + """
[nodes.again]
question = "Again?"
probe = "disk.full"
yes = "start"
no = "monitor"
"""
    )
    with pytest.raises(PlaybookFileError) as caught:
        load_tree_file(write(tmp_path, "tree.toml", looped))
    assert "cycle" in caught.value.problem
    orphan = (
        TREE
        + """
[nodes.orphan]
question = "Orphan?"
probe = "disk.full"
yes = "monitor"
no = "monitor"
"""
    )
    with pytest.raises(PlaybookFileError) as caught:
        load_tree_file(write(tmp_path, "tree.toml", orphan))
    assert caught.value.field == "nodes.orphan" and caught.value.line == 12


def test_leaf_recommending_an_unknown_playbook_fails_the_library(tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    write(folder, "tree.toml", TREE.replace('["restore"]', '["no-such-playbook"]'))
    with pytest.raises(PlaybookFileError) as caught:
        Library.load([folder])
    assert "no-such-playbook" in caught.value.problem
    assert caught.value.line == 7
