"""``drconsole engine ...`` on every backend that exists: the commands do what the contract says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import assert_error, cli, make_data_dir, tree_hash, write_without_close

STATS_FIELDS = {"backend", "total_keys", "disk_usage_bytes", "memory_usage_bytes", "wal_bytes", "last_lsn"}


def test_every_command_round_trips(backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    created = cli(capsys, "engine", "init", "--engine", backend, "--data-dir", data, "--json")
    assert created.code == 0, created.err
    assert created.json()["backend"] == backend

    put = cli(capsys, "engine", "put", "--data-dir", data, "greeting", "héllo wörld", "--json")
    assert put.code == 0 and put.json()["lsn"] >= 1
    got = cli(capsys, "engine", "get", "--data-dir", data, "greeting")
    assert (got.code, got.out) == (0, "héllo wörld\n")
    assert cli(capsys, "engine", "get", "--data-dir", data, "greeting", "--json").json() == {
        "found": True,
        "key": "greeting",
        "value": "héllo wörld",
    }

    deleted = cli(capsys, "engine", "delete", "--data-dir", data, "greeting", "--json")
    assert deleted.code == 0 and deleted.json()["existed"] is True
    absent = cli(capsys, "engine", "get", "--data-dir", data, "greeting")
    assert absent.code == 1 and absent.out == ""
    assert "not found" in absent.err and "Traceback" not in absent.err
    absent_json = cli(capsys, "engine", "get", "--data-dir", data, "greeting", "--json")
    assert absent_json.code == 1 and absent_json.json()["found"] is False

    rows = [{"key": f"k{i:04d}", "value": f"v{i} ✓"} for i in range(2500)]
    source = tmp_path / "rows.jsonl"
    # Written out of order: the export must sort.
    source.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in reversed(rows)), encoding="utf-8")
    imported = cli(capsys, "engine", "import", "--data-dir", data, "--input", source, "--json")
    assert imported.code == 0 and imported.json()["records"] == 2500

    target = tmp_path / "out.jsonl"
    exported = cli(capsys, "engine", "export", "--data-dir", data, "--output", target, "--json")
    assert exported.code == 0 and exported.json()["records"] == 2500
    assert [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()] == rows

    stats = cli(capsys, "engine", "stats", "--data-dir", data, "--json").json()
    assert STATS_FIELDS <= set(stats) and stats["backend"] == backend and stats["total_keys"] == 2500
    verified = cli(capsys, "engine", "verify", "--data-dir", data, "--json")
    assert verified.code == 0
    assert verified.json()["ok"] is True and verified.json()["problems"] == []

    for action in ("flush", "compact"):
        done = cli(capsys, "engine", action, "--data-dir", data, "--json")
        assert done.code == 0 and done.json()["ok"] is True, done.err
    # Reopen after everything: still all there.
    again = cli(capsys, "engine", "export", "--data-dir", data, "--output", "-")
    assert [json.loads(line) for line in again.out.splitlines()] == rows


def test_human_output_is_plain_text(any_backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_data_dir(tmp_path / "data", any_backend, rows=3)
    stats = cli(capsys, "engine", "stats", "--data-dir", data)
    assert stats.code == 0 and "total_keys" in stats.out and "3" in stats.out
    verified = cli(capsys, "engine", "verify", "--data-dir", data)
    assert verified.code == 0 and verified.out.startswith("ok:")
    put = cli(capsys, "engine", "put", "--data-dir", data, "k", "v")
    assert put.code == 0 and put.out.startswith("stored k")


def test_binary_keys_and_values_round_trip(backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_data_dir(tmp_path / "data", backend, rows=0)
    source = tmp_path / "binary.jsonl"
    source.write_text(
        '{"key_b64": "/wA=", "value_b64": "gICA"}\n{"key": "text", "value_b64": "/w=="}\n'
        '{"key": "plain", "value": "ok"}\n',
        encoding="utf-8",
    )
    assert cli(capsys, "engine", "import", "--data-dir", data, "--input", source).code == 0
    target = tmp_path / "out.jsonl"
    assert cli(capsys, "engine", "export", "--data-dir", data, "--output", target).code == 0
    assert [json.loads(line) for line in target.read_text().splitlines()] == [
        {"key": "plain", "value": "ok"},
        {"key": "text", "value_b64": "/w=="},
        {"key_b64": "/wA=", "value_b64": "gICA"},
    ]
    # A key the shell passed as undecodable bytes reaches the engine as those bytes.
    got = cli(capsys, "engine", "get", "--data-dir", data, "\udcff\x00", "--json")
    assert got.code == 0 and got.json() == {"found": True, "key_b64": "/wA=", "value_b64": "gICA"}


def test_read_only_commands_change_nothing_even_with_unreplayed_wal(
    backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_data_dir(tmp_path / "data", backend, rows=5)
    write_without_close(data, {"late": "only in the WAL"})
    before = tree_hash(data)
    got = cli(capsys, "engine", "get", "--data-dir", data, "late")
    assert (got.code, got.out) == (0, "only in the WAL\n")
    target = tmp_path / "out.jsonl"
    assert cli(capsys, "engine", "export", "--data-dir", data, "--output", target).code == 0
    assert sum(1 for _ in target.open()) == 6
    assert cli(capsys, "engine", "stats", "--data-dir", data, "--json").json()["total_keys"] >= 5
    assert cli(capsys, "engine", "verify", "--data-dir", data).code == 0
    assert cli(capsys, "wal", "validate", "--data-dir", data).code == 0
    assert tree_hash(data) == before


def test_repair_needs_yes_then_runs(backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from engines import engine_class

    data = make_data_dir(tmp_path / "data", backend, rows=5)
    before = tree_hash(data)
    refused = cli(capsys, "engine", "repair", "--data-dir", data, "--json")
    if not hasattr(engine_class(backend), "repair"):
        assert_error(refused, 2, contains="not available")
        assert refused.json()["exit_code"] == 2
        assert tree_hash(data) == before
        return
    assert_error(refused, 4, contains="--yes")
    assert refused.json()["exit_code"] == 4
    assert tree_hash(data) == before
    repaired = cli(capsys, "engine", "repair", "--data-dir", data, "--yes", "--json")
    assert repaired.code == 0, repaired.err
    assert repaired.json()["backend"] == backend
    for i in range(5):
        assert cli(capsys, "engine", "get", "--data-dir", data, f"key{i:03d}").out == f"value {i} ✓\n"


def test_a_data_dir_held_by_another_process(
    any_backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_data_dir(tmp_path / "data", any_backend, rows=3)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom engines import open_engine\n"
            "engine = open_engine(sys.argv[1], mode='rw')\nprint('open', flush=True)\ntime.sleep(60)\n",
            str(data),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        before = tree_hash(data)
        assert_error(cli(capsys, "engine", "put", "--data-dir", data, "k", "v"), 3, contains="in use")
        assert tree_hash(data) == before
        # Reading does not need the lock.
        assert cli(capsys, "engine", "get", "--data-dir", data, "key001").out == "value 1 ✓\n"
    finally:
        holder.kill()
        holder.wait()


def test_relative_paths(
    backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every command, the read-only ones included, works with paths relative to the working directory."""
    monkeypatch.chdir(tmp_path)
    assert cli(capsys, "engine", "init", "--engine", backend, "--data-dir", "data").code == 0
    Path("rows.jsonl").write_text('{"key": "k", "value": "v"}\n', encoding="utf-8")
    for argv in (
        ["engine", "import", "--data-dir", "data", "--input", "rows.jsonl"],
        ["engine", "export", "--data-dir", "data", "--output", "out.jsonl"],
        ["engine", "get", "--data-dir", "data", "k"],
        ["engine", "stats", "--data-dir", "data"],
        ["engine", "verify", "--data-dir", "data"],
        ["wal", "validate", "--data-dir", "data"],
        ["engine", "flush", "--data-dir", "data"],
    ):
        done = cli(capsys, *argv)
        assert done.code == 0, (argv, done.err)
    assert Path("out.jsonl").read_text() == '{"key": "k", "value": "v"}\n'
    assert str(tmp_path / "data") in cli(capsys, "engine", "flush", "--data-dir", "data").out
