"""The entry points the CLI calls: bad input is one line on stderr and exit 2, never a traceback."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from console.cli.main import main as cli_main
from console.tui.demo import run_cli
from console.tui.launch import run_app


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "drconsole.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_bad_config_is_exit_2_with_file_line_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "[thresholds]\ndisk_usage = 85\n")
    assert run_app("interactive", None, False, path) == 2
    error = capsys.readouterr().err
    assert error == (
        f"drconsole: error: {path}:2: thresholds.disk_usage: Input should be less than or equal to 1 "
        "(got 85) (fix that line and run again)\n"
    )


def test_the_cli_renders_config_errors_the_same_way(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, '[[node]]\nname = "a"\nurl = "http://x"\ncolour = "red"\n')
    for argv in (
        ["--config", str(path)],
        ["--config", str(path), "tui", "--read-only"],
        ["--config", str(path), "dashboard", "--theme", "wall"],
    ):
        assert cli_main(argv) == 2
        error = capsys.readouterr().err
        assert f"{path}:4: node[0].colour: unknown field (a typo?)" in error
        assert "Traceback" not in error


def test_an_unknown_theme_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, '[[node]]\nname = "a"\nurl = "http://127.0.0.1:9"\n')
    assert run_app("interactive", "neon", False, path) == 2
    assert "no theme named 'neon'" in capsys.readouterr().err


def test_no_terminal_no_console(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DRCONSOLE_FORCE_TUI", raising=False)
    monkeypatch.setattr("sys.__stdin__", io.StringIO())  # whatever runs the tests, no terminal here
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    path = write(tmp_path, '[[node]]\nname = "a"\nurl = "http://127.0.0.1:9"\n')
    assert run_app("dashboard", None, True, path) == 2
    assert "needs a terminal" in capsys.readouterr().err
    assert run_app("interactive", None, False, None) == 2  # the demo is not even created
    assert not (tmp_path / "xdg").exists()
    assert run_app("drill", None, False, path) == 2
    capsys.readouterr()
    # `drconsole demo` (console.tui.demo.run_cli, the CLI's handler): no terminal, no workspace made.
    assert run_cli(argparse.Namespace(workspace=tmp_path / "demo", theme=None)) == 2
    assert not (tmp_path / "demo").exists() and "needs a terminal" in capsys.readouterr().err
