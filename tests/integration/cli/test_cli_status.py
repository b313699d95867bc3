"""``drconsole`` with no command, ``tui`` and ``dashboard``: the app when it exists, else a status."""

from __future__ import annotations

import importlib.machinery
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from cli_support import cli, run

import console.cli_status


def test_without_an_app_a_status_is_printed(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    real = console.cli_status._module_exists
    monkeypatch.setattr(console.cli_status, "_module_exists", lambda name: name != "console.app" and real(name))
    for argv in ([], ["tui", "--read-only"], ["dashboard", "--theme", "dark"]):
        result = cli(capsys, *argv)
        assert result.code == 0 and "drconsole engine init" in result.out and result.err == ""


def test_the_app_is_opened_with_the_documented_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./drconsole.toml, no user config: the demo workspace
    monkeypatch.setenv("HOME", str(tmp_path))
    calls: list[dict[str, Any]] = []
    fake = types.ModuleType("console.app")
    fake.__spec__ = importlib.machinery.ModuleSpec("console.app", None)
    fake.run = lambda **kwargs: calls.append(kwargs) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "console.app", fake)
    config = tmp_path / "etc" / "custom.toml"
    config.parent.mkdir()
    config.write_text("")
    assert cli(capsys, "--config", config).code == 0
    assert cli(capsys, "tui", "--read-only", "--theme", "light").code == 0
    (tmp_path / "drconsole.toml").write_text("")
    assert cli(capsys, "dashboard").code == 0
    assert calls == [
        {"config": config, "read_only": False, "theme": None, "dashboard": False},
        {"config": None, "read_only": True, "theme": "light", "dashboard": False},
        {"config": tmp_path / "drconsole.toml", "read_only": True, "theme": None, "dashboard": True},
    ]


def test_status_as_json_from_the_console_script() -> None:
    done = run("--json")
    assert done.code == 0 and "Traceback" not in done.err
    assert {"config", "config_source", "backends"} <= set(done.json())
