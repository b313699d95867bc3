"""drconsole.toml: a good file loads; every bad one names file, line and field (exit code 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.config import ConfigError, load_config, locate

GOOD = """\
[console]
refresh_seconds = 2
theme = "wall"

[thresholds]                      # the reference alert rules
disk_usage = 0.80
memory_usage = 0.90

[[node]]
name = "orders-a"
engine = "lsm"
url = "http://127.0.0.1:8081"
data_dir = "data/orders-a"
backup_repo = "/backup/orders-a"
role = "primary"

[[node]]
name = "orders-b"
engine = "lsm"
data_dir = "data/orders-b"
role = "standby"
upstream = "orders-a"

[notify]
webhook = "https://chat.example/hooks/x"

[escalation]
path = ["DevOps on-call", "SRE lead"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "drconsole.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_loads_with_paths_relative_to_it(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.console.refresh_seconds == 2 and config.console.theme == "wall"
    assert config.thresholds.disk_usage == 0.80 and config.thresholds.node_down_seconds == 30
    assert [node.name for node in config.nodes] == ["orders-a", "orders-b"]
    assert config.nodes[0].data_dir == tmp_path.resolve() / "data" / "orders-a"
    assert config.nodes[0].backup_repo == Path("/backup/orders-a")
    assert config.nodes[1].upstream == "orders-a"
    assert config.escalation.path == ["DevOps on-call", "SRE lead"]
    assert config.path == tmp_path / "drconsole.toml"


def test_an_empty_file_is_all_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.nodes == [] and config.console.refresh_seconds == 1


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "words"),
    [
        ("disk_usage = 0.80", "disk_usage = 80", 6, "thresholds.disk_usage", "less than or equal to 1"),
        ("refresh_seconds = 2", "refresh_second = 2", 2, "console.refresh_second", "unknown field"),
        (
            'engine = "lsm"\ndata_dir = "data/orders-b"',
            'engine = "lsmm"\ndata_dir = "data/orders-b"',
            19,
            "node[1].engine",
            "must be one of cow, lsm, rocksdb",
        ),
        ('upstream = "orders-a"', 'upstream = "orders-z"', 22, "node[1].upstream", "not a configured node"),
        ('url = "http://127.0.0.1:8081"', 'url = "127.0.0.1:8081"', 12, "node[0].url", "http://"),
        ('role = "standby"', 'role = "follower"', 21, "node[1].role", "primary, standby"),
        ('name = "orders-a"', 'name = "orders-b"', 18, "node[1].name", "used twice"),
        ("refresh_seconds = 2", 'refresh_seconds = "fast"', 2, "console.refresh_seconds", "valid number"),
    ],
)
def test_a_bad_field_names_file_line_and_field(
    tmp_path: Path, old: str, new: str, line: int, field: str, words: str
) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    assert (error.path, error.line, error.field) == (path, line, field)
    assert error.message.startswith(f"{path}:{line}: {field}: ")
    assert words in error.message
    assert error.exit_code == 2


def test_a_node_without_url_or_data_dir(tmp_path: Path) -> None:
    path = write(tmp_path, '[console]\ntheme = "dark"\n\n[[node]]\nname = "lonely"\n')
    with pytest.raises(ConfigError, match=r":4: node\[0\]: node 'lonely' needs a url or a data_dir"):
        load_config(path)


def test_toml_syntax_errors_give_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[console]\ntheme = "dark"\nrefresh_seconds = = 1\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.line == 3 and "not valid TOML" in caught.value.message


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml")


def test_locate_finds_tables_arrays_and_dotted_keys() -> None:
    text = "[a]\nx = 1\n[[n]]\ny = 2\n[[n]]\ny = 3\nb.c = 4\n"
    assert locate(text, ("a", "x")) == 2
    assert locate(text, ("n", 1, "y")) == 6
    assert locate(text, ("n", 1, "b", "c")) == 7
    assert locate(text, ("n", 1, "missing")) == 5  # the enclosing table
    assert locate(text, ("zzz",)) == 1  # a missing top-level field: the file's top (the one locator's rule)
    assert locate("", ("zzz",)) is None
