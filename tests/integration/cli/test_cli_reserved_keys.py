"""Keys under __drconsole__/ are drconsole's: every user-facing write refuses them, exports leave them out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import run_cli_in_process

from console.cli.main import main
from engines import create_engine, open_engine
from engines.keys import RESERVED_PREFIX


def _data_dir(path: Path) -> Path:
    with create_engine(path, backend="lsm") as engine:
        engine.put(b"user:1", b"a")
        engine.put(RESERVED_PREFIX + b"ready", b"probe")  # what a node's /ready writes
    return path


def _tree(path: Path) -> dict[str, bytes]:
    return {str(file.relative_to(path)): file.read_bytes() for file in sorted(path.rglob("*")) if file.is_file()}


@pytest.mark.parametrize(
    "argv",
    [
        ["engine", "put", "--data-dir", "{d}", "__drconsole__/ready", "x"],
        ["engine", "delete", "--data-dir", "{d}", "__drconsole__/ready"],
    ],
)
def test_put_and_delete_refuse_reserved_keys(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    data = _data_dir(tmp_path / "d")
    before = _tree(data)
    result = run_cli_in_process(capsys, main, *[arg.format(d=data) for arg in argv])
    assert result.code == 2 and "reserved for drconsole" in result.err and result.err.count("\n") == 1
    assert _tree(data) == before


def test_import_refuses_a_reserved_key_by_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _data_dir(tmp_path / "d")
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"key": "user:2", "value": "b"}\n{"key": "__drconsole__/epoch", "value": "9"}\n')
    result = run_cli_in_process(capsys, main, "engine", "import", "--data-dir", data, "--input", rows)
    assert result.code == 2 and f"{rows}, line 2: keys under '__drconsole__/' are reserved" in result.err
    with open_engine(data, mode="ro") as engine:
        assert engine.get(b"user:2") is None


def test_an_export_leaves_them_out_and_imports_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data_dir(tmp_path / "d")
    exported = tmp_path / "all.jsonl"
    assert run_cli_in_process(capsys, main, "engine", "export", "--data-dir", data, "--output", exported).code == 0
    assert [json.loads(line)["key"] for line in exported.read_text().splitlines()] == ["user:1"]
    copy = tmp_path / "copy"
    assert run_cli_in_process(capsys, main, "engine", "init", "--engine", "cow", "--data-dir", copy).code == 0
    assert run_cli_in_process(capsys, main, "engine", "import", "--data-dir", copy, "--input", exported).code == 0


def test_a_deeply_nested_line_is_bad_input_with_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data_dir(tmp_path / "d")
    rows = tmp_path / "deep.jsonl"
    rows.write_text('{"key": "k", "value": "v"}\n' + "[" * 100_000 + "]" * 100_000 + "\n")
    result = run_cli_in_process(capsys, main, "engine", "import", "--data-dir", data, "--input", rows)
    assert result.code == 2 and f"{rows}, line 2: not valid input: JSON nested too deeply" in result.err
    assert "bug" not in result.err
