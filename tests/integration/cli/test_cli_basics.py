"""What users expect of any CLI: --version, quiet stderr, completion, the config lookup order."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

import pytest
from cli_support import DRCONSOLE, run

from console.cli.main import build_parser
from console.config_lookup import ConfigLookupError, resolve_config

QUIET_ENV = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}


def _drconsole(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DRCONSOLE), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=QUIET_ENV if env is None else env,
    )


def _command_lines() -> list[list[str]]:
    """Every command and every action of the real parser, as argv prefixes."""
    parser = build_parser()
    lines: list[list[str]] = []
    commands = next(action for action in parser._actions if action.dest == "command")
    for name, command in commands.choices.items():
        lines.append([name])
        for action in command._actions:
            if action.dest == "action" and action.choices:
                lines.extend([name, child] for child in action.choices)
    return lines


def test_version_is_the_installed_distribution() -> None:
    done = _drconsole("--version")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout == f"drconsole {version('drconsole')}\n"


def test_every_help_has_an_empty_stderr() -> None:
    lines = [[], *_command_lines()]
    assert len(lines) > 40 and ["serve", "ssh"] in lines
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda argv: (argv, _drconsole(*argv, "--help")), lines))
    failures = [(argv, done.returncode, done.stderr) for argv, done in results if done.returncode or done.stderr]
    assert failures == []
    assert all(done.stdout.startswith("usage: drconsole") for _argv, done in results)


def test_ssh_host_key_generation_prints_no_dependency_warning(tmp_path: Path) -> None:
    done = _drconsole("serve", "ssh", "--generate-host-key", tmp_path / "host_key")
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and "Warning" not in done.stdout


def test_warnings_stay_visible_when_the_user_asks_for_them(tmp_path: Path) -> None:
    # Only meaningful while the locked asyncssh/cryptography pair warns at all: ask Python first.
    raw = subprocess.run([sys.executable, "-W", "default", "-c", "import asyncssh"], capture_output=True, text=True)
    if "CryptographyDeprecationWarning" not in raw.stderr:
        pytest.skip("the locked asyncssh/cryptography pair no longer warns; nothing to keep visible")
    done = _drconsole(
        "serve", "ssh", "--generate-host-key", tmp_path / "host_key", env={**QUIET_ENV, "PYTHONWARNINGS": "default"}
    )
    assert done.returncode == 0 and "CryptographyDeprecationWarning" in done.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_parse_in_their_shell(shell: str, tmp_path: Path) -> None:
    done = _drconsole("completion", shell)
    assert done.returncode == 0 and done.stderr == ""
    script = tmp_path / f"drconsole.{shell}"
    script.write_text(done.stdout)
    checked = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr


def test_bash_completes_commands_actions_and_choices(tmp_path: Path) -> None:
    script = tmp_path / "drconsole.bash"
    script.write_text(_drconsole("completion", "bash").stdout)

    def complete(*words: str) -> list[str]:
        line = " ".join(words)
        program = (
            f"source {script}; COMP_WORDS=({' '.join(repr(word) for word in words)}); "
            f"COMP_CWORD={len(words) - 1}; COMP_LINE={line!r}; COMP_POINT={len(line)}; "
            '_shtab_drconsole; printf "%s\\n" "${COMPREPLY[@]}"'
        )
        done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("drconsole", "eng") == ["engine"]
    assert {"init", "verify", "repair"} <= set(complete("drconsole", "engine", ""))
    assert complete("drconsole", "engine", "init", "--engine", "") == ["cow", "lsm", "rocksdb"]
    assert "restore" in complete("drconsole", "backup", "re")


def test_fish_completes_from_the_parser(tmp_path: Path) -> None:
    script = tmp_path / "drconsole.fish"
    script.write_text(_drconsole("completion", "fish").stdout)
    done = subprocess.run(
        ["fish", "-c", f"source {script}; complete -C 'drconsole dri'"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0 and done.stdout.split("\t")[0] == "drill"


def _write(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    return path


def test_config_lookup_order(tmp_path: Path) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    environ = {"HOME": str(home)}
    assert resolve_config(None, environ=environ, cwd=work) == (None, "demo workspace")
    user = _write(home / ".config" / "drconsole" / "drconsole.toml")
    assert resolve_config(None, environ=environ, cwd=work) == (user, "user config")
    xdg = _write(tmp_path / "xdg" / "drconsole" / "drconsole.toml")
    environ["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    assert resolve_config(None, environ=environ, cwd=work) == (xdg, "user config")
    environ["XDG_CONFIG_HOME"] = "relative/xdg"  # invalid by the XDG spec: ignored
    assert resolve_config(None, environ=environ, cwd=work) == (user, "user config")
    local = _write(work / "drconsole.toml")
    assert resolve_config(None, environ=environ, cwd=work) == (local, "./drconsole.toml")
    named = _write(tmp_path / "named.toml")
    environ["DRCONSOLE_CONFIG"] = str(named)
    assert resolve_config(None, environ=environ, cwd=work) == (named, "$DRCONSOLE_CONFIG")
    explicit = _write(tmp_path / "explicit.toml")
    assert resolve_config(explicit, environ=environ, cwd=work) == (explicit, "--config")


def test_an_explicit_config_that_is_not_a_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigLookupError, match="is a directory"):
        resolve_config(tmp_path, environ={})
    with pytest.raises(ConfigLookupError, match=r"\$DRCONSOLE_CONFIG .* does not exist"):
        resolve_config(None, environ={"DRCONSOLE_CONFIG": str(tmp_path / "missing.toml")})


def test_the_cli_follows_the_lookup_order(tmp_path: Path) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    env = {**QUIET_ENV, "HOME": str(home)}
    env.pop("XDG_CONFIG_HOME", None)
    env.pop("DRCONSOLE_CONFIG", None)
    node = '[[node]]\nname = "{name}"\nurl = "http://127.0.0.1:9"\n'
    (tmp_path / "xdg" / "drconsole").mkdir(parents=True)
    (tmp_path / "xdg" / "drconsole" / "drconsole.toml").write_text(node.format(name="from-xdg"))
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")

    def status() -> dict[str, object]:
        done = subprocess.run(
            [str(DRCONSOLE), "status", "--json"], capture_output=True, text=True, timeout=60, env=env, cwd=work
        )
        assert done.returncode == 1, done.stderr  # the node does not answer
        import json

        return json.loads(done.stdout)

    assert status()["nodes"][0]["name"] == "from-xdg"  # type: ignore[index]
    (tmp_path / "env.toml").write_text(node.format(name="from-env"))
    env["DRCONSOLE_CONFIG"] = str(tmp_path / "env.toml")
    assert status()["config_source"] == "$DRCONSOLE_CONFIG"
    env["DRCONSOLE_CONFIG"] = str(tmp_path / "nowhere.toml")
    missing = subprocess.run([str(DRCONSOLE), "status"], capture_output=True, text=True, timeout=60, env=env, cwd=work)
    assert missing.returncode == 2
    assert re.fullmatch(r"drconsole: error: \$DRCONSOLE_CONFIG \S+nowhere.toml does not exist \(.*\)\n", missing.stderr)


def test_config_that_is_a_directory_says_so(tmp_path: Path) -> None:
    done = run("--config", tmp_path, "status")
    assert done.code == 2 and "is a directory" in done.err
