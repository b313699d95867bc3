"""Bad input for every ``engine`` and ``wal`` command (DESIGN.md, Safety 6; issue 2, "Bad input").

Each case checks the documented exit code, one line on stderr, no traceback, and that nothing
changed on disk (the tree is hashed before and after).
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from cli_support import BACKENDS, Result, assert_error, cli, make_data_dir, tree_hash

# Every command that works on an existing data dir; "D" stands for the data dir.
COMMANDS: dict[str, list[str]] = {
    "put": ["engine", "put", "--data-dir", "D", "k", "v"],
    "get": ["engine", "get", "--data-dir", "D", "k"],
    "delete": ["engine", "delete", "--data-dir", "D", "k"],
    "import": ["engine", "import", "--data-dir", "D", "--input", "ROWS"],
    "export": ["engine", "export", "--data-dir", "D", "--output", "OUT"],
    "stats": ["engine", "stats", "--data-dir", "D"],
    "verify": ["engine", "verify", "--data-dir", "D"],
    "flush": ["engine", "flush", "--data-dir", "D"],
    "compact": ["engine", "compact", "--data-dir", "D", "--yes"],
    "repair": ["engine", "repair", "--data-dir", "D", "--yes"],
    "repair-unconfirmed": ["engine", "repair", "--data-dir", "D"],
    "wal-validate": ["wal", "validate", "--data-dir", "D"],
    "wal-truncate": ["wal", "truncate", "--data-dir", "D", "--yes"],
    "wal-truncate-unconfirmed": ["wal", "truncate", "--data-dir", "D"],
}
ENGINE_COMMANDS = [name for name, argv in COMMANDS.items() if argv[0] == "engine"]


def command(name: str, data: Path, tmp_path: Path, *extra: str) -> list[str]:
    rows = tmp_path / "rows.jsonl"
    if not rows.exists():
        rows.write_text('{"key": "a", "value": "1"}\n', encoding="utf-8")
    places = {"D": str(data), "ROWS": str(rows), "OUT": str(tmp_path / "out.jsonl")}
    return [places.get(part, part) for part in COMMANDS[name]] + list(extra)


def assert_unchanged_failure(
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    watched: Path,
    tmp_path: Path,
    contains: str | None = None,
) -> Result:
    before = tree_hash(watched)
    result = cli(capsys, *argv)
    assert_error(result, code, contains=contains)
    assert tree_hash(watched) == before
    assert not (tmp_path / "out.jsonl").exists()
    return result


# ------------------------------------------------------------------ the data dir is not one
@pytest.mark.parametrize("name", COMMANDS)
def test_missing_data_dir(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "missing" / "data"
    result = assert_unchanged_failure(
        capsys, command(name, data, tmp_path, "--json"), 3, tmp_path / "missing", tmp_path, contains="does not exist"
    )
    assert not (tmp_path / "missing").exists()  # no mkdir, not even of the parent
    assert result.json()["exit_code"] == 3 and "does not exist" in result.json()["error"]


@pytest.mark.parametrize("name", COMMANDS)
def test_empty_dir(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "empty"
    data.mkdir()
    assert_unchanged_failure(
        capsys, command(name, data, tmp_path), 3, data, tmp_path, contains="not a drconsole data dir"
    )
    assert list(data.iterdir()) == []


@pytest.mark.parametrize("name", COMMANDS)
def test_a_regular_file_as_data_dir(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "file"
    data.write_text("precious")
    assert_unchanged_failure(capsys, command(name, data, tmp_path), 3, data, tmp_path, contains="not a directory")
    assert data.read_text() == "precious"


@pytest.mark.parametrize("name", ["get", "put", "stats", "import", "wal-validate", "wal-truncate"])
def test_a_foreign_dir(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "photos"
    (data / "2024").mkdir(parents=True)
    (data / "2024" / "beach.jpg").write_bytes(b"\xff\xd8\xff")
    (data / "notes.txt").write_text("not an engine")
    assert_unchanged_failure(
        capsys, command(name, data, tmp_path), 3, data, tmp_path, contains="not a drconsole data dir"
    )


@pytest.mark.parametrize("name", ["get", "put", "verify", "wal-validate"])
def test_a_damaged_marker(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "drconsole.json").write_text("{ this is not json")
    assert_unchanged_failure(capsys, command(name, data, tmp_path), 3, data, tmp_path, contains="drconsole.json")


@pytest.mark.parametrize("name", ENGINE_COMMANDS)
def test_a_dir_of_another_backend(
    name: str, any_backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_data_dir(tmp_path / "data", any_backend, rows=3)
    other = next(b for b in BACKENDS if b != any_backend)
    assert_unchanged_failure(
        capsys,
        command(name, data, tmp_path, "--engine", other),
        3,
        data,
        tmp_path,
        contains=f"holds a {any_backend} engine, not {other}",
    )


# ------------------------------------------------------------------------------- init
@pytest.mark.parametrize("existing", ["data dir", "foreign dir", "file"])
def test_init_over_something_that_exists(
    existing: str, any_backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "target"
    if existing == "data dir":
        make_data_dir(target, any_backend, rows=3)
    elif existing == "foreign dir":
        target.mkdir()
        (target / "keep.txt").write_text("mine")
    else:
        target.write_text("mine")
    for backend in BACKENDS:  # the same backend or another one: refused all the same
        result = assert_unchanged_failure(
            capsys,
            ["engine", "init", "--engine", backend, "--data-dir", str(target), "--json"],
            2,
            target,
            tmp_path,
            contains="already exists",
        )
        assert result.json()["exit_code"] == 2


def test_init_where_a_directory_cannot_be(any_backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Root may write anywhere, but nobody can make a directory under a regular file.
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    assert_unchanged_failure(
        capsys,
        ["engine", "init", "--engine", any_backend, "--data-dir", str(blocker / "data")],
        3,
        tmp_path,
        tmp_path,
        contains="blocker",
    )


@pytest.mark.parametrize("pre_existing", [False, True])
def test_init_that_fails_midway_leaves_nothing(
    pre_existing: bool,
    any_backend: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from engines import engine_class

    def disk_full(cls: type, path: Path, options: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(engine_class(any_backend), "_store_create", classmethod(disk_full))
    target = tmp_path / "new" / "data"
    if pre_existing:
        target.mkdir(parents=True)
    before = tree_hash(tmp_path)
    result = cli(capsys, "engine", "init", "--engine", any_backend, "--data-dir", target)
    assert_error(result, 1, contains="no space left")
    assert tree_hash(tmp_path) == before


def test_init_rejects_unknown_choices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--engine", "mysql"], ["--engine", "lsm", "--durability", "eventually"]):
        result = cli(capsys, "engine", "init", "--data-dir", tmp_path / "d", *argv)
        assert_error(result, 2, contains="invalid choice")
    assert not (tmp_path / "d").exists()


# -------------------------------------------------------------------------- keys and values
@pytest.mark.parametrize("key", ["", "\ud800", "k" * 2000], ids=["empty", "lone-surrogate", "too-long"])
@pytest.mark.parametrize("name", ["put", "get", "delete"])
def test_bad_keys_on_the_command_line(
    name: str, key: str, any_backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_data_dir(tmp_path / "data", any_backend, rows=3)
    argv = command(name, data, tmp_path)
    argv[4] = key
    assert_unchanged_failure(capsys, argv, 2, data, tmp_path)


def test_keys_of_the_wrong_type_through_the_api(backend: str, tmp_path: Path) -> None:
    from engines import open_engine
    from engines.errors import InvalidArgumentError

    data = make_data_dir(tmp_path / "data", backend, rows=3)
    with open_engine(data) as engine:
        lsn = engine.last_lsn
        for call in (
            lambda: engine.put("text", b"v"),
            lambda: engine.put(b"k", "text"),  # type: ignore[arg-type]
            lambda: engine.get(42),
            lambda: engine.delete(None),  # type: ignore[arg-type]
            lambda: engine.write_batch([(b"ok", b"v"), ("bad", b"v")]),
        ):  # type: ignore[list-item]
            with pytest.raises(InvalidArgumentError) as raised:
                call()
            assert raised.value.exit_code == 2
    with open_engine(data, mode="ro") as engine:
        assert engine.last_lsn == lsn and engine.get(b"ok") is None  # the batch was all-or-nothing


# -------------------------------------------------------------------------------- import
MALFORMED = {
    "not-json": b"this is not json\n",
    "not-an-object": b"[1, 2]\n",
    "missing-value": b'{"key": "a"}\n',
    "number-key": b'{"key": 1, "value": "x"}\n',
    "bad-base64": b'{"key_b64": "!!", "value": "x"}\n',
    "not-utf8": b'{"key": "\xff\xfe", "value": "x"}\n',
    "empty-key": b'{"key": "", "value": "x"}\n',
    "unknown-field": b'{"key": "a", "value": "b", "ttl": 5}\n',
    "both-spellings": b'{"key": "a", "key_b64": "YQ==", "value": "b"}\n',
    "null-value": b'{"key": "a", "value": null}\n',
    "lone-surrogate": b'{"key": "\\ud800", "value": "x"}\n',
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_jsonl_imports_nothing(
    case: str, any_backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_data_dir(tmp_path / "data", any_backend, rows=3)
    source = tmp_path / "rows.jsonl"
    good = b'{"key": "new1", "value": "x"}\n{"key": "new2", "value": "y"}\n'
    source.write_bytes(good + MALFORMED[case] + b'{"key": "new3", "value": "z"}\n')
    argv = ["engine", "import", "--data-dir", str(data), "--input", str(source), "--json"]
    result = assert_unchanged_failure(capsys, argv, 2, data, tmp_path, contains=f"{source}, line 3")
    assert result.json()["exit_code"] == 2
    assert cli(capsys, "engine", "get", "--data-dir", data, "new1").code == 1


@pytest.mark.parametrize("what", ["missing", "directory"])
def test_import_input_that_is_not_a_file(
    what: str, any_backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_data_dir(tmp_path / "data", any_backend, rows=3)
    source = tmp_path / "input"
    if what == "directory":
        source.mkdir()
    assert_unchanged_failure(
        capsys,
        ["engine", "import", "--data-dir", str(data), "--input", str(source)],
        2,
        data,
        tmp_path,
        contains=str(source),
    )


# -------------------------------------------------------------------------------- export
def test_export_to_an_unwritable_path(any_backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_data_dir(tmp_path / "data", any_backend, rows=3)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    before = tree_hash(tmp_path)
    result = cli(capsys, "engine", "export", "--data-dir", data, "--output", blocker / "out.jsonl")
    assert_error(result, 3, contains="blocker")
    assert tree_hash(tmp_path) == before


@pytest.mark.parametrize("output,extra", [("dir", []), ("-", ["--json"])])
def test_export_to_a_bad_output(
    output: str, extra: list[str], any_backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_data_dir(tmp_path / "data", any_backend, rows=3)
    target = tmp_path / "dir" if output == "dir" else output
    if output == "dir":
        (tmp_path / "dir").mkdir()
    before = tree_hash(tmp_path)
    assert_error(cli(capsys, "engine", "export", "--data-dir", data, "--output", target, *extra), 2)
    assert tree_hash(tmp_path) == before


def test_export_failure_keeps_the_previous_export(
    any_backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import engines.transfer

    data = make_data_dir(tmp_path / "data", any_backend, rows=3)
    target = tmp_path / "out.jsonl"
    target.write_text("previous export\n")

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(engines.transfer.os, "fsync", full)
    assert_error(cli(capsys, "engine", "export", "--data-dir", data, "--output", target), 1, contains="no space")
    assert target.read_text() == "previous export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out.jsonl"]  # no temp file left


# -------------------------------------------------------------------------- confirmation
def test_repair_without_yes_is_refused(backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from engines import engine_class

    data = make_data_dir(tmp_path / "data", backend, rows=3)
    code = 4 if hasattr(engine_class(backend), "repair") else 2
    result = assert_unchanged_failure(
        capsys, command("repair-unconfirmed", data, tmp_path, "--json"), code, data, tmp_path
    )
    assert result.json()["exit_code"] == code


# -------------------------------------------------------------------------------- usage
USAGE = {
    "no-action": ["engine"],
    "unknown-action": ["engine", "frobnicate"],
    "unknown-command": ["nonsense"],
    "no-key": ["engine", "get", "--data-dir", "D"],
    "no-value": ["engine", "put", "--data-dir", "D", "k"],
    "no-data-dir": ["wal", "validate"],
    "extra-argument": ["engine", "stats", "--data-dir", "D", "surplus"],
    "unknown-option": ["engine", "stats", "--data-dir", "D", "--colour"],
    "bad-batch": ["engine", "import", "--data-dir", "D", "--input", "D", "--batch", "zero"],
    "missing-config": ["--config", "/nonexistent/drconsole.toml", "engine", "stats", "--data-dir", "D"],
}


@pytest.mark.parametrize("case", USAGE)
def test_usage_errors(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [str(tmp_path / "d") if part == "D" else part for part in USAGE[case]]
    before = tree_hash(tmp_path)
    assert_error(cli(capsys, *argv), 2)
    as_json = cli(capsys, *argv, "--json")
    assert_error(as_json, 2)
    assert as_json.json()["exit_code"] == 2
    assert tree_hash(tmp_path) == before


def test_global_options_go_before_or_after_the_command(
    any_backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_data_dir(tmp_path / "data", any_backend, rows=3)
    config = tmp_path / "drconsole.toml"
    config.write_text(f'[console]\n\n[[node]]\nname = "one"\ndata_dir = "{data}"\n')
    for argv in (
        ["--json", "engine", "stats", "--data-dir", str(data)],
        ["--config", str(config), "engine", "stats", "--data-dir", str(data), "--json"],
        ["engine", "--json", "stats", "--data-dir", str(data)],
    ):
        result = cli(capsys, *argv)
        assert result.code == 0 and result.json()["total_keys"] == 3
    status = cli(capsys, "--config", config, "--json")
    assert status.code == 0 and status.json()["config"] == str(config)


# ------------------------------------------------------------------------ the last resort
@pytest.mark.parametrize(
    "raised,code,contains",
    [
        (RuntimeError("boom"), 1, "unexpected RuntimeError: boom"),
        (OSError(errno.EIO, "Input/output error"), 3, "Input/output error"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
def test_anything_unexpected_is_still_one_line(
    raised: BaseException,
    code: int,
    contains: str,
    any_backend: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from engines import engine_class

    data = make_data_dir(tmp_path / "data", any_backend, rows=3)

    def failing(self: object, key: bytes) -> bytes | None:
        raise raised

    monkeypatch.setattr(engine_class(any_backend), "get", failing)
    result = cli(capsys, "engine", "get", "--data-dir", data, "key001", "--json")
    assert_error(result, code, contains=contains)
    assert result.json()["exit_code"] == code
