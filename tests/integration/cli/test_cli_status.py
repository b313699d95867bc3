"""``drconsole`` with no command, ``tui`` and ``dashboard`` open the console with the documented arguments."""

from __future__ import annotations

import importlib.machinery
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from cli_support import cli, run


def test_the_console_is_opened_with_the_documented_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./drconsole.toml, no user config: the demo workspace
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("DRCONSOLE_CONFIG", raising=False)
    calls: list[tuple[Any, ...]] = []
    fake = types.ModuleType("console.tui.launch")
    fake.__spec__ = importlib.machinery.ModuleSpec("console.tui.launch", None)
    fake.run_app = lambda *arguments: calls.append(arguments) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "console.tui.launch", fake)
    config = tmp_path / "etc" / "custom.toml"
    config.parent.mkdir()
    config.write_text("")
    assert cli(capsys, "--config", config).code == 0
    assert cli(capsys, "tui", "--read-only", "--theme", "light").code == 0
    (tmp_path / "drconsole.toml").write_text("")
    assert cli(capsys, "dashboard").code == 0
    assert calls == [
        ("interactive", None, False, config),
        ("interactive", "light", True, None),
        ("dashboard", None, True, tmp_path / "drconsole.toml"),
    ]


def test_json_without_a_command_is_the_fleet_status(tmp_path: Path) -> None:
    config = tmp_path / "drconsole.toml"
    config.write_text('[[node]]\nname = "gone"\nurl = "http://127.0.0.1:9"\n')
    done = run("--config", config, "--json")
    assert done.code == 1 and "Traceback" not in done.err  # the one node does not answer: not healthy
    payload = done.json()
    assert payload["config"] == str(config) and payload["nodes"][0]["name"] == "gone"
    assert payload["nodes"][0]["health"] == "down"
