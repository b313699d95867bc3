"""The real ``drconsole`` console script, in child processes: exit codes, streams, imports, speed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from cli_support import DRCONSOLE, assert_error, make_data_dir, run, tree_hash


def test_errors_from_the_console_script(any_backend: str, tmp_path: Path) -> None:
    missing = run("engine", "stats", "--data-dir", tmp_path / "missing", "--json")
    assert_error(missing, 3, contains="does not exist")
    assert json.loads(missing.out)["exit_code"] == 3 and len(missing.out.splitlines()) == 1
    assert not (tmp_path / "missing").exists()

    data = make_data_dir(tmp_path / "data", any_backend, rows=3)
    source = tmp_path / "rows.jsonl"
    source.write_text('{"key": "a", "value": "1"}\n{"key": "b"\n', encoding="utf-8")
    before = tree_hash(data)
    assert_error(run("engine", "import", "--data-dir", data, "--input", source), 2, contains="line 2")
    assert_error(run("engine", "get", "--data-dir", data), 2, contains="KEY")
    assert_error(run("engine", "repair", "--data-dir", data), 4 if _has_repair(any_backend) else 2)
    assert tree_hash(data) == before


def _has_repair(backend: str) -> bool:
    from engines import engine_class

    return hasattr(engine_class(backend), "repair")


def test_results_from_the_console_script(any_backend: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("engine", "init", "--engine", any_backend, "--data-dir", data).code == 0
    assert run("engine", "put", "--data-dir", data, "ключ", "значение ✓").code == 0
    got = run("engine", "get", "--data-dir", data, "ключ")
    assert (got.code, got.out, got.err) == (0, "значение ✓\n", "")
    assert run("engine", "get", "--data-dir", data, "absent").code == 1
    stats = run("--json", "engine", "stats", "--data-dir", data)
    assert stats.code == 0 and json.loads(stats.out)["total_keys"] == 1 and len(stats.out.splitlines()) == 1
    helped = run("engine", "--help")
    assert helped.code == 0 and "usage:" in helped.out


def test_binary_values_are_printed_as_they_are(any_backend: str, tmp_path: Path) -> None:
    data = make_data_dir(tmp_path / "data", any_backend, rows=0)
    from engines import open_engine

    with open_engine(data) as engine:
        engine.put(b"bin", b"\x80\xff\x00")
    raw = subprocess.run(
        [str(DRCONSOLE), "engine", "get", "--data-dir", str(data), "bin"], capture_output=True, timeout=60
    )
    assert (raw.returncode, raw.stdout, raw.stderr) == (0, b"\x80\xff\x00\n", b"")


def test_headless_commands_never_import_textual(any_backend: str, tmp_path: Path) -> None:
    data, rows = tmp_path / "data", tmp_path / "rows.jsonl"
    rows.write_text('{"key": "a", "value": "1"}\n', encoding="utf-8")
    commands = [
        ["engine", "init", "--engine", any_backend, "--data-dir", str(data)],
        ["engine", "put", "--data-dir", str(data), "k", "v"],
        ["engine", "get", "--data-dir", str(data), "k"],
        ["engine", "import", "--data-dir", str(data), "--input", str(rows)],
        ["engine", "export", "--data-dir", str(data), "--output", str(tmp_path / "out.jsonl")],
        ["engine", "stats", "--data-dir", str(data), "--json"],
        ["engine", "verify", "--data-dir", str(data)],
        ["engine", "flush", "--data-dir", str(data)],
        ["wal", "validate", "--data-dir", str(data)],
        ["engine", "get", "--data-dir", str(tmp_path / "missing"), "k"],
    ]
    code = (
        "import json, sys\n"
        "from console.cli.main import main\n"
        f"codes = [main(argv) for argv in {commands!r}]\n"
        "loaded = sorted(name for name in sys.modules if name.split('.')[0] in ('textual', 'console'))\n"
        "print(json.dumps({'codes': codes, 'loaded': loaded}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["codes"] == [0] * 9 + [3], done.stderr
    assert not [name for name in report["loaded"] if name.startswith("textual")]
    assert "console.tui.app" not in report["loaded"]


def test_both_entry_points_exit_with_the_code_and_every_byte_of_output(tmp_path: Path) -> None:
    """The console script and ``python -m console`` freeze the collector before exiting (``entry``):
    a large piped export still arrives whole, and the exit code is the command's."""
    data = make_data_dir(tmp_path / "data", "lsm", rows=3000)
    for launcher in ([str(DRCONSOLE)], [sys.executable, "-m", "console"]):
        done = subprocess.run(
            [*launcher, "engine", "export", "--data-dir", str(data), "--output", "-"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        rows = [json.loads(line) for line in done.stdout.splitlines()]
        assert done.returncode == 0, done.stderr
        assert sorted(row["value"] for row in rows) == sorted(f"value {n} ✓" for n in range(3000))
        absent = subprocess.run([*launcher, "engine", "get", "--data-dir", str(data), "nope"], timeout=60)
        assert absent.returncode == 1


def test_engine_get_is_fast(any_backend: str, tmp_path: Path) -> None:
    data = make_data_dir(tmp_path / "data", any_backend, rows=100)
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        done = subprocess.run(
            [str(DRCONSOLE), "engine", "get", "--data-dir", str(data), "key042"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        timings.append(time.perf_counter() - started)
        assert done.stdout == "value 42 ✓\n"
    print(f"drconsole engine get ({any_backend}): best {min(timings) * 1000:.0f} ms of {len(timings)} runs")
    assert min(timings) < 1.5


def test_engine_and_backup_commands_never_import_pydantic(any_backend: str, tmp_path: Path) -> None:
    """Importing pydantic and building the engine's option and report models cost ~90-110 ms of
    every engine open here, more than a small backup's packing; they are dataclasses now."""
    data, repo = str(tmp_path / "data"), str(tmp_path / "repo")
    commands = [
        ["engine", "init", "--engine", any_backend, "--data-dir", data],
        ["engine", "put", "--data-dir", data, "k", "v"],
        ["engine", "stats", "--data-dir", data, "--json"],
        ["engine", "verify", "--data-dir", data],
        ["backup", "create", "--data-dir", data, "--repo", repo],
        ["engine", "put", "--data-dir", data, "k2", "v2"],
        ["backup", "create", "--incremental", "--data-dir", data, "--repo", repo],
        ["backup", "list", "--repo", repo],
        ["backup", "verify", "--repo", repo, "latest"],
        ["backup", "restore", "--repo", repo, "latest", "--data-dir", str(tmp_path / "restored")],
    ]
    code = (
        "import json, sys\n"
        "from console.cli.main import main\n"
        f"codes = [main(argv) for argv in {commands!r}]\n"
        "loaded = sorted(name for name in sys.modules if name.split('.')[0] == 'pydantic')\n"
        "print(json.dumps({'codes': codes, 'loaded': loaded}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["codes"] == [0] * len(commands), done.stderr
    assert report["loaded"] == []
    from engines import open_engine

    with open_engine(tmp_path / "restored") as engine:
        assert (engine.get(b"k"), engine.get(b"k2")) == (b"v", b"v2")
