"""The ``drconsole backup`` commands keep the CLI contract: JSON shapes, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from backup_support import assert_error, cli

from engines import create_engine, open_engine

CREATE_FIELDS = {"backup_id", "type", "path", "size_bytes", "checksum", "lsn_start", "lsn_end", "duration_seconds"}
LIST_FIELDS = {"backup_id", "type", "timestamp", "size_bytes", "lsn_start", "lsn_end", "verified"}


def _data(tmp_path: Path, rows: int = 50) -> Path:
    with create_engine(tmp_path / "data", backend="rocksdb", durability="async") as engine:
        for n in range(rows):
            engine.put(b"key%04d" % n, b"value %d" % n)
    return tmp_path / "data"


def test_create_list_and_incremental_json_follow_the_contract(tmp_path: Path, capsys) -> None:
    data, repo = _data(tmp_path), tmp_path / "repo"
    full = cli(capsys, "backup", "create", "--data-dir", data, "--repo", repo, "--json")
    assert full.code == 0 and full.err == ""
    assert set(full.json()) >= CREATE_FIELDS and full.json()["lsn_end"] == 50
    # The first full backup's checkpoint covers the WAL the data dir held: nothing to archive.
    assert full.json()["archived_segments"] == 0
    nothing = cli(capsys, "backup", "create", "--data-dir", data, "--repo", repo, "--incremental", "--json")
    assert nothing.code == 0 and nothing.json()["backup_id"] is None
    with open_engine(data, durability="async") as engine:
        engine.put(b"later", b"x")
    incremental = cli(capsys, "backup", "create", "--data-dir", data, "--repo", repo, "--incremental", "--json")
    payload = incremental.json()
    assert set(payload) >= CREATE_FIELDS and payload["type"] == "incremental" and payload["lsn_end"] == 51
    listed = cli(capsys, "backup", "list", "--repo", repo, "--json").json()
    assert [b["type"] for b in listed["backups"]] == ["full", "incremental"]
    assert all(set(b) >= LIST_FIELDS for b in listed["backups"])
    text = cli(capsys, "backup", "list", "--repo", repo)
    assert text.code == 0 and "ID" in text.out.splitlines()[0] and "recoverable window: LSN 50..51" in text.out


def test_text_output_of_create_verify_restore(tmp_path: Path, capsys) -> None:
    data, repo = _data(tmp_path), tmp_path / "repo"
    created = cli(capsys, "backup", "create", "--data-dir", data, "--repo", repo)
    assert created.code == 0 and created.out.startswith("full backup backup_")
    verified = cli(capsys, "backup", "verify", "--repo", repo, "latest")
    assert verified.code == 0 and verified.out.startswith("ok:")
    restored = cli(capsys, "backup", "restore", "--repo", repo, "latest", "--data-dir", tmp_path / "r")
    assert restored.code == 0 and restored.out.startswith(f"restored {tmp_path / 'r'}")


def test_create_on_a_data_dir_held_by_a_node_exits_3(tmp_path: Path, capsys) -> None:
    data, repo = _data(tmp_path), tmp_path / "repo"
    with open_engine(data):  # the "node"
        result = cli(capsys, "backup", "create", "--data-dir", data, "--repo", repo, "--json")
    line = assert_error(result, 3, contains="in use by another process")
    assert "/admin/checkpoint" in line
    assert json.loads(result.out)["exit_code"] == 3
    assert not repo.exists()  # nothing was created for a source that cannot be opened


def test_create_from_a_missing_data_dir_exits_3(tmp_path: Path, capsys) -> None:
    missing = cli(capsys, "backup", "create", "--data-dir", tmp_path / "nope", "--repo", tmp_path / "r")
    assert_error(missing, 3, contains=f"data dir {tmp_path / 'nope'} does not exist")  # not "locking ...: ...lock"
    assert not (tmp_path / "nope").exists() and not (tmp_path / "r").exists()


def test_create_from_a_directory_that_is_no_data_dir_leaves_it_as_it_was(tmp_path: Path, capsys) -> None:
    """The data dir's lock file was made before the check: a user's directory kept a drconsole.lock."""
    other = tmp_path / "home"
    other.mkdir()
    (other / "notes.txt").write_text("mine\n")
    result = cli(capsys, "backup", "create", "--data-dir", other, "--repo", tmp_path / "r")
    assert_error(result, 3, contains="is not a drconsole data dir")
    assert sorted(path.name for path in other.iterdir()) == ["notes.txt"]
    assert not (tmp_path / "r").exists()


def test_unknown_backup_id_exits_2(tmp_path: Path, capsys) -> None:
    data, repo = _data(tmp_path), tmp_path / "repo"
    cli(capsys, "backup", "create", "--data-dir", data, "--repo", repo)
    assert_error(cli(capsys, "backup", "verify", "--repo", repo, "backup_19990101_000000"), 2, contains="no backup")
    assert_error(cli(capsys, "backup", "restore", "--repo", repo, "nope", "--data-dir", tmp_path / "x"), 2)
    assert not (tmp_path / "x").exists()


def test_one_repository_holds_one_node(tmp_path: Path, capsys) -> None:
    data, repo = _data(tmp_path), tmp_path / "repo"
    cli(capsys, "backup", "create", "--data-dir", data, "--repo", repo)
    with create_engine(tmp_path / "other", backend="rocksdb") as engine:
        engine.put(b"a", b"b")
    assert_error(
        cli(capsys, "backup", "create", "--data-dir", tmp_path / "other", "--repo", repo),
        4,
        contains="one backup repository per node",
    )


def test_schedule_prints_and_installs_units(tmp_path: Path, capsys) -> None:
    data, repo, units = tmp_path / "data dir", tmp_path / "repo", tmp_path / "units"
    printed = cli(capsys, "backup", "schedule", "--data-dir", data, "--repo", repo)
    assert printed.code == 0
    assert "OnCalendar=*-*-* 02:00:00" in printed.out and "Type=oneshot" in printed.out
    assert f'"{data}"' in printed.out  # a path with a space is quoted for systemd
    assert printed.out.count("0 2 * * * ") == 1 and "backup prune --repo" in printed.out
    installed = cli(
        capsys, "backup", "schedule", "--data-dir", data, "--repo", repo, "--install", "--unit-dir", units, "--json"
    )
    assert installed.code == 0
    names = sorted(p.name for p in units.iterdir())
    assert names == ["drconsole-backup-data-dir.service", "drconsole-backup-data-dir.timer"]
    assert installed.json()["installed"] == [str(units / name) for name in names]
    again = cli(capsys, "backup", "schedule", "--data-dir", data, "--repo", repo, "--install", "--unit-dir", units)
    assert again.code == 0  # identical files: unchanged
    (units / names[0]).write_text("[Service]\nExecStart=/bin/true\n")
    assert_error(
        cli(capsys, "backup", "schedule", "--data-dir", data, "--repo", repo, "--install", "--unit-dir", units),
        4,
        contains="not overwritten",
    )


def test_progress_bar_renders_only_on_a_terminal(tmp_path: Path) -> None:
    from console.cli.backup import _ProgressBar
    from engines.backup.progress import ProgressEvent

    assert _ProgressBar(False).callback is None
    with _ProgressBar(True) as bar:
        bar.callback(ProgressEvent("pack", 5, 10, "bytes", 0.5, 0.5))
        bar.callback(ProgressEvent("replay", 3, 9, "records", 0.1, None))
        bar.callback(ProgressEvent("pack", 10, 10, "bytes", 1.0, 0.0, finished=True))


def test_the_console_script_runs_backup_commands(tmp_path: Path) -> None:
    import subprocess
    import sys

    drconsole = Path(sys.executable).with_name("drconsole")
    data, repo = _data(tmp_path), tmp_path / "repo"
    created = subprocess.run(
        [str(drconsole), "backup", "create", "--data-dir", str(data), "--repo", str(repo), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["type"] == "full"
    missing = subprocess.run(
        [str(drconsole), "backup", "verify", "--repo", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        missing.returncode == 3
        and missing.stderr.startswith("drconsole: error: ")
        and "Traceback" not in missing.stderr
    )
