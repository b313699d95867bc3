"""Bad input to ``drconsole serve``: one line, exit 2, nothing listening, nothing written."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from serve_kit import make_key, server_env

from console.cli.main import main as cli_main


@pytest.fixture
def public(tmp_path: Path) -> str:
    """alice's public key line (a str: base64 may hold "//", which a Path would fold)."""
    return make_key(tmp_path / "alice")


@pytest.fixture
def files(tmp_path: Path, public: str) -> dict[str, Path]:
    host_key = tmp_path / "host_key"
    assert cli_main(["serve", "ssh", "--generate-host-key", str(host_key)]) == 0
    good = tmp_path / "users.toml"
    good.write_text(f'[[user]]\nname = "alice"\nrole = "responder"\nkeys = ["{public}"]\n', encoding="utf-8")
    return {"host_key": host_key, "users": good}


def _serve(tmp_path: Path, users: Path, host_key: Path, *extra: str) -> tuple[int, str]:
    code = cli_main(["serve", "ssh", "--port", "0", "--host-key", str(host_key), "--users", str(users), *extra])
    return code, ""


@pytest.mark.parametrize(
    "text, expected",
    [
        ('[[user]\nname = "x"\n', ":1: not valid TOML"),
        ('[[user]]\nname = "alice"\nrole = "admin"\nkeys = ["K"]\n', ":3: user[0].role: unknown role 'admin'"),
        (
            '[[user]]\nname = "alice"\nrole = "viewer"\nkeys = ["ssh-ed25519 AAAAnotakey"]\n',
            ":4: user[0].keys[0]: not an OpenSSH public key",
        ),
        ('[[user]]\nname = "alice"\nrole = "viewer"\nkeys = []\n', ":4: user[0].keys: must not be empty"),
        ('[[user]]\nname = "alice"\nrole = "viewer"\n', ":1: user[0].keys: required field is missing"),
        (
            '[[user]]\nname = "alice"\nrole = "viewer"\nkeys = ["K"]\nshell = "/bin/sh"\n',
            ":5: user[0].shell: unknown field",
        ),
        (
            '[[user]]\nname = "alice"\nrole = "viewer"\nkeys = ["K"]\n\n[[user]]\nname = "alice"\nrole = "responder"\n'
            'keys = ["K2"]\n',
            ":7: user[1].name: user 'alice' is listed twice",
        ),
        (
            '[[user]]\nname = "alice"\nrole = "viewer"\nkeys = ["K"]\n\n[[user]]\nname = "eve"\nrole = "responder"\n'
            'keys = ["K"]\n',
            ":9: user[1].keys[0]: this key is already 'alice'",
        ),
    ],
)
def test_a_bad_users_file_is_exit_2_with_file_line_and_field(
    tmp_path: Path, files: dict[str, Path], public: str, text: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    users = tmp_path / "bad.toml"
    other = make_key(tmp_path / "other")
    users.write_text(text.replace('"K"', f'"{public}"').replace('"K2"', f'"{other}"'), encoding="utf-8")
    assert _serve(tmp_path, users, files["host_key"])[0] == 2
    error = capsys.readouterr().err
    assert error.startswith(f"drconsole: error: {users}"), error
    assert expected in error and error.count("\n") == 1, error


def test_a_missing_or_exposed_host_key_is_exit_2(
    tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _serve(tmp_path, files["users"], tmp_path / "absent")[0] == 2
    assert "host key" in capsys.readouterr().err and not (tmp_path / "absent").exists()
    files["host_key"].chmod(0o644)
    assert _serve(tmp_path, files["users"], files["host_key"])[0] == 2
    assert "readable by others" in capsys.readouterr().err
    files["host_key"].chmod(0o600)
    garbage = tmp_path / "garbage"
    garbage.write_text("not a key\n")
    garbage.chmod(0o600)
    assert _serve(tmp_path, files["users"], garbage)[0] == 2
    assert "not an unencrypted private key" in capsys.readouterr().err


def test_generate_never_overwrites(tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    before = files["host_key"].read_bytes()
    assert cli_main(["serve", "ssh", "--generate-host-key", str(files["host_key"])]) == 4
    assert "not overwritten" in capsys.readouterr().err
    assert files["host_key"].read_bytes() == before
    assert files["host_key"].stat().st_mode & 0o777 == 0o600


def test_remote_addresses_need_allow_remote_and_options_are_checked(
    tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _serve(tmp_path, files["users"], files["host_key"], "--host", "0.0.0.0")[0] == 2
    assert "not a loopback address" in capsys.readouterr().err
    assert cli_main(["serve", "ssh", "--port", "0", "--users", str(files["users"])]) == 2
    assert "--host-key required" in capsys.readouterr().err
    assert cli_main(["serve", "web", "--port", "0", "--host", "10.1.2.3"]) == 2
    assert "not a loopback address" in capsys.readouterr().err
    bad_config = tmp_path / "drconsole.toml"
    bad_config.write_text("[console]\ntheme = 3\n", encoding="utf-8")
    assert _serve(tmp_path, files["users"], files["host_key"], "--config", str(bad_config))[0] == 2
    assert f"{bad_config}:2: console.theme" in capsys.readouterr().err


def test_the_real_command_exits_2_and_listens_on_nothing(tmp_path: Path, files: dict[str, Path]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    users = tmp_path / "bad.toml"
    users.write_text('[[user]]\nname = "alice"\nrole = "root"\nkeys = []\n', encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "console",
            "serve",
            "ssh",
            "--port",
            str(port),
            "--host-key",
            str(files["host_key"]),
            "--users",
            str(users),
        ],
        env=server_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "state").exists()  # no audit line: nothing started
    with socket.socket() as probe:  # and the port is still free
        probe.bind(("127.0.0.1", port))


@pytest.mark.parametrize(
    ("seats", "said"),
    [
        ("-1", "argument --responder-seats: -1 is negative"),  # the parser's bound on every count option
        ("33", "--responder-seats 33 must be between 0 and --max-sessions (32)"),
    ],
)
def test_responder_seats_outside_the_session_limit_are_refused(
    tmp_path: Path, files: dict[str, Path], seats: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = _serve(tmp_path, files["users"], files["host_key"], "--responder-seats", seats)
    assert code == 2
    error = capsys.readouterr().err
    assert said in error and error.count("\n") == 1
